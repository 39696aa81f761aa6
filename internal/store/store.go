// Package store is Vigia's history in ClickHouse: the DDL migrations, the
// inserts of the sink and the reads of backtests and tests.
//
// Two engines run the same SQL text: a ClickHouse server through
// clickhouse-go (native protocol), and embedded chDB when no server
// address is configured. Engines register themselves (package
// store/chdb registers "chdb", store/server "clickhouse"), the way
// database/sql drivers do, because chDB's Go binding loads libchdb.so when
// the program starts and panics without it: only the binaries that may
// use chDB link it.
//
// Rows go in with an insert deduplication token, built here column by
// column (see Values): as one Native block on chDB (its streaming insert,
// NativeInserter), as TabSeparated text on a server; the contract suite
// checks that both renderings store the same rows. They come out as
// TabSeparated text rows, the one format both engines speak, which keeps
// a single read path tested on chDB valid for the server.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Options choose and configure the engine.
type Options struct {
	// Addr is the ClickHouse server (host:9000, native protocol); empty
	// runs embedded chDB in Path.
	Addr     string
	Database string // created if missing; "vigia" when empty
	Username string
	Password string
	// Path is chDB's data directory. chDB holds one data path per
	// process and locks it against other processes.
	Path string
}

// Engine is what an engine implements: statements, inserts, and reads of
// TabSeparated rows.
type Engine interface {
	// Exec runs one statement that returns no rows.
	Exec(ctx context.Context, query string) error
	// Select runs query and calls fn with each row's fields (unescaped),
	// in order. The fields are valid only during the call.
	Select(ctx context.Context, query string, fn func(fields [][]byte) error) error
	Close() error
	// Name is the engine's name for logs ("chdb", "clickhouse").
	Name() string
}

// NativeInserter is an Engine that takes the rows of an insert as one
// block in ClickHouse's Native format, apart from the query text (chDB's
// streaming insert). Store.Insert uses it when the engine has it.
type NativeInserter interface {
	// InsertNative runs query (an INSERT without FORMAT or data) with one
	// Native block as its data, given in pieces sent one after the other.
	InsertNative(ctx context.Context, query string, block [][]byte) error
}

// Opener opens an engine.
type Opener func(ctx context.Context, o Options) (Engine, error)

var (
	enginesMu sync.Mutex
	engines   = map[string]Opener{}
)

// Register makes an engine available to Open; engine packages call it
// from init.
func Register(name string, open Opener) {
	enginesMu.Lock()
	defer enginesMu.Unlock()
	engines[name] = open
}

// Store is an open ClickHouse database.
type Store struct {
	eng Engine
	db  string
}

// Open opens the server engine when o.Addr is set, else chDB.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Database == "" {
		o.Database = "vigia"
	}
	if !validIdent(o.Database) {
		return nil, fmt.Errorf("clickhouse database %q: letters, digits and _ only", o.Database)
	}
	name := "chdb"
	if o.Addr != "" {
		name = "clickhouse"
	}
	enginesMu.Lock()
	open, ok := engines[name]
	known := make([]string, 0, len(engines))
	for n := range engines {
		known = append(known, n)
	}
	enginesMu.Unlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("clickhouse engine %q is not built into this program (has: %s)", name, strings.Join(known, ", "))
	}
	eng, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := eng.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+o.Database); err != nil {
		eng.Close()
		return nil, fmt.Errorf("create database %s: %w", o.Database, err)
	}
	return &Store{eng: eng, db: o.Database}, nil
}

// Engine is the engine's name.
func (s *Store) Engine() string { return s.eng.Name() }

// Database is the database the tables live in.
func (s *Store) Database() string { return s.db }

// Close closes the engine.
func (s *Store) Close() error { return s.eng.Close() }

// Exec runs one statement; table names are qualified by the caller (see
// Table).
func (s *Store) Exec(ctx context.Context, query string) error { return s.eng.Exec(ctx, query) }

// Select runs query and calls fn per row; see Engine.Select.
func (s *Store) Select(ctx context.Context, query string, fn func(fields [][]byte) error) error {
	return s.eng.Select(ctx, query, fn)
}

// Table returns the qualified name of table.
func (s *Store) Table(table string) string { return s.db + "." + table }

// Insert inserts the rows of v into table with the deduplication token
// (empty: none). The same token on the same table within the tables'
// deduplication window drops the second insert, in the table and in the
// materialized views it feeds: that is what makes a retried batch
// harmless. An engine that takes Native blocks (NativeInserter: chDB) gets
// the rows as one; the others get TabSeparated text after the query.
func (s *Store) Insert(ctx context.Context, table, token string, v *Values) error {
	if v.Rows() == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(s.Table(table))
	b.WriteString(" (")
	b.WriteString(strings.Join(v.Columns(), ", "))
	b.WriteString(")")
	// Synchronous inserts: the sink batches by itself, and an async
	// insert is deduplicated by async_insert_deduplicate (off by default)
	// instead of the token. chDB turns async_insert on by default.
	//
	// optimize_on_insert = 0: ClickHouse would otherwise run each block
	// through the table engine's merge (ReplacingMergeTree: collapse the
	// duplicates inside the block) before writing it, which costs about
	// half of chDB's insert time for the events table (docs/BENCHMARKS.md)
	// and changes nothing a query sees: duplicates are collapsed by merges
	// anyway, and queries that must be exact read with FINAL.
	b.WriteString(" SETTINGS async_insert = 0, optimize_on_insert = 0")
	if token != "" {
		b.WriteString(", insert_deduplication_token = ")
		b.WriteString(quote(token))
	}
	var err error
	if ni, ok := s.eng.(NativeInserter); ok {
		err = ni.InsertNative(ctx, b.String(), v.Native())
	} else {
		// The rows follow the query text. chDB ends inline data at the
		// first empty line; a TabSeparated row of two or more columns
		// never is one.
		b.WriteString(" FORMAT TabSeparated\n")
		b.Write(v.TSV())
		err = s.eng.Exec(ctx, b.String())
	}
	if err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", v.Rows(), table, err)
	}
	return nil
}

// Count returns the single integer query returns (count(), max(), ...).
func (s *Store) Count(ctx context.Context, query string) (int64, error) {
	var n int64
	got := false
	err := s.Select(ctx, query, func(f [][]byte) error {
		if len(f) != 1 {
			return fmt.Errorf("want one column, got %d", len(f))
		}
		_, err := fmt.Sscan(string(f[0]), &n)
		got = true
		return err
	})
	if err == nil && !got {
		err = errors.New("no row")
	}
	return n, err
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
