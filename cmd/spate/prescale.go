package main

import (
	"context"
	"errors"
)

func runPrescale(ctx context.Context, env *environment, args []string) error {
	return errors.New("prescale: not implemented yet")
}
