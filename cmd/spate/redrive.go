package main

import (
	"context"
	"errors"
)

func runRedrive(ctx context.Context, env *environment, args []string) error {
	return errors.New("redrive: not implemented yet")
}
