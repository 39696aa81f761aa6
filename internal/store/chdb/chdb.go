// Package chdb is the embedded ClickHouse engine of the store: chDB,
// loaded from libchdb.so (CHDB_LIB_PATH) without cgo, when a store is
// first opened (binding.go). Importing it registers the engine "chdb" with
// package store.
//
// chDB runs ClickHouse inside this process. It holds one data path per
// process (a second path cannot be opened while one is) and locks it
// against other processes, so a process shares one connection: every
// Store opened on the same path here gets it, queries are serialized on
// it, and it closes with the last Store.
//
// A program without the library runs; opening an embedded store then
// fails with an error that says how to install it.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"vigia/internal/store"
)

func init() { store.Register("chdb", open) }

// The process's one chDB connection.
var (
	mu    sync.Mutex // guards the fields below, and serializes queries
	conn  *connection
	path  string
	users int
)

type engine struct {
	closed bool
}

func open(_ context.Context, o store.Options) (store.Engine, error) {
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
	c, err := connect(abs)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, abs)
	}
	conn, path, users = c, abs, 1
	return &engine{}, nil
}

func (e *engine) Name() string { return "chdb" }

func (e *engine) run(ctx context.Context, q string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	if e.closed {
		return nil, errors.New("chdb: store closed")
	}
	return conn.query(q, "TabSeparated")
}

// InsertNative runs an INSERT with one Native block as its data
// (store.NativeInserter).
func (e *engine) InsertNative(ctx context.Context, query string, block [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if e.closed {
		return errors.New("chdb: store closed")
	}
	return conn.insert(query, "Native", block)
}

// Exec runs a statement.
func (e *engine) Exec(ctx context.Context, q string) error {
	_, err := e.run(ctx, q)
	return err
}

// Select runs q and hands each TabSeparated row to fn, without holding the
// connection. The whole result is held in memory: callers read large
// ranges in slices (backtests read an hour of events at a time).
func (e *engine) Select(ctx context.Context, q string, fn func([][]byte) error) error {
	buf, err := e.run(ctx, q)
	if err != nil {
		return err
	}
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
		conn.close()
		conn, path = nil, ""
	}
	return nil
}
