// Package clock is the wall clock that components fall back to when their
// Config.Now is nil.
//
// Every component that compares times (window ends against MaxAge, events
// against partition hours, schedules against the present) takes a Now func;
// a nil Now means Wall(). Wall honours SPATE_CLOCK_SHIFT, a Go duration
// added to the machine's time, so the whole suite — binaries started by
// tests included — can be run as if on another day:
//
//	SPATE_CLOCK_SHIFT=8760h go test ./...   (make test-clock-shift)
//
// A test that passes only on the day it was written, because it compares a
// fixed date with the real clock, fails under the shift. The variable is
// for tests; a deployment never sets it.
package clock

import (
	"fmt"
	"os"
	"time"
)

// ShiftEnv is the variable Wall reads.
const ShiftEnv = "SPATE_CLOCK_SHIFT"

// Wall returns time.Now, moved by $SPATE_CLOCK_SHIFT when that is set. A
// value that is not a duration panics: a shifted run that silently used the
// real clock would prove nothing.
func Wall() func() time.Time {
	v := os.Getenv(ShiftEnv)
	if v == "" {
		return time.Now
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("clock: %s=%q is not a duration: %v", ShiftEnv, v, err))
	}
	return func() time.Time { return time.Now().Add(d) }
}

// Or returns now, or Wall() when now is nil: the one way constructors fill a
// nil Config.Now.
func Or(now func() time.Time) func() time.Time {
	if now != nil {
		return now
	}
	return Wall()
}
