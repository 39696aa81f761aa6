package chdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vigia/internal/store"
	_ "vigia/internal/store/chdb"
	"vigia/internal/store/storetest"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background(), storetest.Retention); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContract runs the store contract on embedded chDB.
func TestContract(t *testing.T) { storetest.Run(t, open) }

// TestOnePathPerProcess: chDB holds one data path per process; a second
// path is refused with a clear error while the first is open, and the
// same path is shared.
func TestOnePathPerProcess(t *testing.T) {
	ctx := context.Background()
	a, err := store.Open(ctx, store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := store.Open(ctx, store.Options{Path: t.TempDir()}); err == nil {
		t.Fatal("a second data path opened while the first is open")
	}
	if n, err := a.Count(ctx, "SELECT 1"); err != nil || n != 1 {
		t.Errorf("first store after the refused open: %d, %v", n, err)
	}
}

// TestGoCrashesStayGoCrashes: with chDB open, a nil dereference in Go
// code is still a Go panic with its trace and exit status 2 (libchdb's
// own crash handlers would hang or kill the process silently).
func TestGoCrashesStayGoCrashes(t *testing.T) {
	if os.Getenv("VIGIA_CHDB_CRASH_CHILD") == "1" {
		s, err := store.Open(context.Background(), store.Options{Path: os.Getenv("VIGIA_CHDB_CRASH_DIR")})
		if err != nil {
			os.Exit(3)
		}
		defer s.Close()
		var p *struct{ n int }
		fmt.Println(p.n) // the crash
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGoCrashesStayGoCrashes$")
	cmd.Env = append(os.Environ(), "VIGIA_CHDB_CRASH_CHILD=1", "VIGIA_CHDB_CRASH_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if ctx.Err() != nil {
		t.Fatalf("the crashing child hung:\n%s", out)
	}
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "invalid memory address or nil pointer dereference") {
		t.Errorf("child: %v, want a Go panic (exit 2):\n%s", err, out)
	}
}
