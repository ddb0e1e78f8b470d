// Command lambdazip packages Lambda bootstrap binaries reproducibly (see
// internal/lambdazip). `make lambdas` runs it:
//
//	go run ./tools/lambdazip -o dist/router.zip dist/router/bootstrap
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spate-dev/spate/internal/lambdazip"
)

func main() {
	out := flag.String("o", "", "zip file to write")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "Usage: lambdazip -o OUT.zip FILE...\n\nEach FILE is stored under its base name, mode 0755, with a fixed timestamp.")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := lambdazip.WriteFile(*out, flag.Args()...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
