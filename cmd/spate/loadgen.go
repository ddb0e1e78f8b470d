package main

import (
	"context"
	"errors"
)

func runLoadgen(ctx context.Context, env *environment, args []string) error {
	return errors.New("loadgen: not implemented yet")
}
