package main

import (
	"context"
	"errors"
)

func runIngest(ctx context.Context, env *environment, args []string) error {
	return errors.New("ingest: not implemented yet")
}
