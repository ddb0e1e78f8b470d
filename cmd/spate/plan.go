package main

import (
	"context"
	"errors"
)

func runPlan(ctx context.Context, env *environment, args []string) error {
	return errors.New("plan: not implemented yet")
}
