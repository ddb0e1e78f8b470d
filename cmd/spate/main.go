// Command spate is the one CLI of the pipeline: the local pipeline, the
// Fargate ingest service, capacity planning and operator tools. Each
// subcommand lives in its own file and only wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spate-dev/spate/internal/clock"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, env *environment, args []string) error
}

// environment is what main hands every subcommand: no globals.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger
	// now is the clock every component is given; nil is the wall clock
	// (internal/clock), which SPATE_CLOCK_SHIFT moves for tests.
	now func() time.Time
}

func commands() []command {
	return []command{
		{"local", "run the whole pipeline on this machine, no AWS account needed", runLocal},
		{"ingest", "run the ingest HTTP service (the Fargate container), configured from SPATE_* variables", runIngest},
		{"redrive", "put events from the SQS dead-letter queue back into Kinesis", runRedrive},
		{"plan", "plan capacity and cost from a broadcast schedule", runPlan},
		{"prescale", "apply a capacity plan ahead of the broadcasts", runPrescale},
		{"loadgen", "send generated events to an ingest URL at a target rate", runLoadgen},
		{"schema", "check the event schemas: every file loads, every version a compatible successor", runSchema},
		{"recover", "re-validate kept failed events and send the ones that now pass to ingest", runRecover},
		{"lake", "maintain the lake: forget people (GDPR erasure), compact files and drop duplicates", runLake},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	env := &environment{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    clock.Wall(),
		log:    slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(os.Getenv("SPATE_LOG_LEVEL"))})),
	}
	if err := run(ctx, env, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "spate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	usage(env.stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: spate <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'spate <command> --help' for a command's flags.")
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
