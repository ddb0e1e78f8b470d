package clock

import (
	"testing"
	"time"
)

func TestWallIsShifted(t *testing.T) {
	t.Setenv(ShiftEnv, "8760h")
	got := Wall()()
	if d := got.Sub(time.Now()); d < 8759*time.Hour || d > 8761*time.Hour {
		t.Errorf("shifted clock is %s from now, want 8760h", d)
	}
}

func TestWallUnshifted(t *testing.T) {
	t.Setenv(ShiftEnv, "")
	if d := time.Since(Wall()()); d < -time.Second || d > time.Second {
		t.Errorf("unshifted clock is %s from now", d)
	}
}

func TestBadShiftPanics(t *testing.T) {
	t.Setenv(ShiftEnv, "next year")
	defer func() {
		if recover() == nil {
			t.Error("a bad shift was ignored")
		}
	}()
	Wall()
}

func TestOrKeepsTheCallersClock(t *testing.T) {
	t.Setenv(ShiftEnv, "8760h")
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := Or(func() time.Time { return at })(); !got.Equal(at) {
		t.Errorf("Or replaced the caller's clock: %s", got)
	}
	if got := Or(nil)(); got.Sub(time.Now()) < 8759*time.Hour {
		t.Errorf("Or(nil) is not the shifted wall clock: %s", got)
	}
}
