// Package chdb is the embedded ClickHouse engine of the store: chDB,
// loaded from libchdb.so (CHDB_LIB_PATH) through chdb-go's purego binding.
// Importing it registers the engine "chdb" with package store.
//
// chDB runs ClickHouse inside this process. It holds one data path per
// process (a second path cannot be opened while one is) and locks it
// against other processes, so a process shares one connection: every
// Store opened on the same path here gets it, queries are serialized on
// it, and it closes with the last Store.
//
// Importing this package makes the program load libchdb.so at start, and
// chdb-go panics when the library is missing: only programs that may run
// embedded ClickHouse import it.
package chdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	chdbpurego "github.com/chdb-io/chdb-go/chdb-purego"
	"github.com/ebitengine/purego"

	"vigia/internal/store"
)

func init() { store.Register("chdb", open) }

// The process's one chDB connection.
var (
	mu    sync.Mutex // guards the fields below, and serializes queries
	conn  chdbpurego.ChdbConn
	path  string
	users int
)

type engine struct {
	closed bool
}

// keepGoSignals tells libchdb not to install its own handlers for crash
// signals (SIGSEGV, SIGBUS...). With them, a nil dereference in Go code
// hangs or kills the process instead of panicking with a stack trace;
// chdb-go does not expose the switch, so it is bound here, once, before
// the first connection. A library without the symbol is used as is.
func keepGoSignals() {
	lib := os.Getenv("CHDB_LIB_PATH")
	if lib == "" {
		lib = "libchdb.so"
	}
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return
	}
	if _, err := purego.Dlsym(h, "chdb_set_signal_handlers_enabled"); err != nil {
		return
	}
	var enable func(int32)
	purego.RegisterLibFunc(&enable, h, "chdb_set_signal_handlers_enabled")
	enable(0)
}

var signalsOnce sync.Once

func open(_ context.Context, o store.Options) (store.Engine, error) {
	signalsOnce.Do(keepGoSignals)
	if o.Path == "" {
		return nil, errors.New("chdb: a data path is required (clickhouse.path)")
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("chdb: data path %s: %w", o.Path, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if conn != nil {
		if abs != path {
			return nil, fmt.Errorf("chdb: this process already has %s open; chDB holds one data path per process", path)
		}
		users++
		return &engine{}, nil
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("chdb: data path: %w", err)
	}
	c, err := chdbpurego.NewConnectionFromConnString(abs)
	if err != nil {
		return nil, fmt.Errorf("chdb: open %s (another process may hold it: chDB locks its data path): %w", abs, err)
	}
	conn, path, users = c, abs, 1
	return &engine{}, nil
}

func (e *engine) Name() string { return "chdb" }

func (e *engine) query(ctx context.Context, q, format string) (chdbpurego.ChdbResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.closed {
		return nil, errors.New("chdb: store closed")
	}
	res, err := conn.Query(q, format)
	if err != nil {
		return nil, err
	}
	if err := res.Error(); err != nil {
		res.Free()
		return nil, err
	}
	return res, nil
}

// Exec runs a statement.
func (e *engine) Exec(ctx context.Context, q string) error {
	mu.Lock()
	defer mu.Unlock()
	res, err := e.query(ctx, q, "TabSeparated")
	if err != nil {
		return err
	}
	res.Free()
	return nil
}

// Select runs q and hands each TabSeparated row to fn. The whole result
// is held in memory: callers read large ranges in slices (backtests read
// an hour of events at a time).
func (e *engine) Select(ctx context.Context, q string, fn func([][]byte) error) error {
	mu.Lock()
	res, err := e.query(ctx, q, "TabSeparated")
	if err != nil {
		mu.Unlock()
		return err
	}
	// Copy out, so that fn runs without holding the connection.
	buf := bytes.Clone(res.Buf())
	res.Free()
	mu.Unlock()
	return store.ForEachTSVRow(buf, fn)
}

// Close releases this user of the connection; the last one closes it.
func (e *engine) Close() error {
	mu.Lock()
	defer mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	users--
	if users == 0 {
		conn.Close()
		conn, path = nil, ""
	}
	return nil
}
