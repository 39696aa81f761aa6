package chdb_test

import (
	"context"
	"testing"

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
