package chdb

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The few functions of libchdb's C API the engine uses, bound without cgo
// through purego, and only when a store is first opened.
//
// This replaces github.com/chdb-io/chdb-go, the binding DESIGN.md chose,
// for three reasons found while using it (docs/dependencies.md): it loads
// the library in a package init and panics when it is missing, which
// stopped every program that linked it (evaluator check and test
// included) on machines without chDB; it does not expose
// chdb_set_signal_handlers_enabled, without which a Go nil dereference
// hangs the process; and its Close leaves a dangling handle. The C API
// used here is the one chdb-go's "new API" calls (chdb.h of libchdb 26.x).
var (
	loadOnce sync.Once
	loadErr  error

	cConnect        func(argc int, argv []*byte) *connection
	cClose          func(conn *connection)
	cQuery          func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	cDestroy        func(res unsafe.Pointer)
	cResultBuffer   func(res unsafe.Pointer) *byte
	cResultLength   func(res unsafe.Pointer) uint
	cResultError    func(res unsafe.Pointer) string
	cSignalHandlers func(enabled int32)

	// The streaming insert: binary-safe data apart from the query text.
	cStreamInsert  func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	cStreamAppend  func(stream unsafe.Pointer, data *byte, n uint) int32
	cStreamDone    func(stream unsafe.Pointer) unsafe.Pointer
	cStreamError   func(stream unsafe.Pointer) string
	cStreamCancel  func(stream unsafe.Pointer)
	cStreamDestroy func(stream unsafe.Pointer)
)

// chdbSuccess is chdb_state's CHDBSuccess.
const chdbSuccess = 0

// connection is libchdb's chdb_connection: a pointer to its state, passed
// by value to chdb_query.
type connection struct {
	internal unsafe.Pointer
}

// LibraryPath is where the library is looked for: CHDB_LIB_PATH, else the
// dynamic loader's search path.
func LibraryPath() string {
	if p := os.Getenv("CHDB_LIB_PATH"); p != "" {
		return p
	}
	return "libchdb.so"
}

func load() {
	lib, err := purego.Dlopen(LibraryPath(), purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		loadErr = fmt.Errorf("chdb: cannot load %s (set CHDB_LIB_PATH; scripts/chdb.sh fetch installs the library): %w", LibraryPath(), err)
		return
	}
	bind := func(fn any, name string) {
		if loadErr != nil {
			return
		}
		if _, err := purego.Dlsym(lib, name); err != nil {
			loadErr = fmt.Errorf("chdb: %s lacks %s (libchdb 26.x is needed): %w", LibraryPath(), name, err)
			return
		}
		purego.RegisterLibFunc(fn, lib, name)
	}
	bind(&cConnect, "chdb_connect")
	bind(&cClose, "chdb_close_conn")
	bind(&cQuery, "chdb_query")
	bind(&cDestroy, "chdb_destroy_query_result")
	bind(&cResultBuffer, "chdb_result_buffer")
	bind(&cResultLength, "chdb_result_length")
	bind(&cResultError, "chdb_result_error")
	bind(&cStreamInsert, "chdb_stream_insert")
	bind(&cStreamAppend, "chdb_stream_append")
	bind(&cStreamDone, "chdb_stream_done")
	bind(&cStreamError, "chdb_stream_insert_error")
	bind(&cStreamCancel, "chdb_stream_cancel_insert")
	bind(&cStreamDestroy, "chdb_destroy_insert_stream")
	if loadErr != nil {
		return
	}
	// Keep Go's handling of crash signals: with libchdb's handlers a nil
	// dereference in Go hangs or kills the process instead of panicking.
	// Must happen before the first connection.
	if _, err := purego.Dlsym(lib, "chdb_set_signal_handlers_enabled"); err == nil {
		purego.RegisterLibFunc(&cSignalHandlers, lib, "chdb_set_signal_handlers_enabled")
		cSignalHandlers(0)
	}
}

// connect opens ClickHouse on the data directory path.
func connect(path string) (*connection, error) {
	loadOnce.Do(load)
	if loadErr != nil {
		return nil, loadErr
	}
	args := []string{"clickhouse", "--path=" + path}
	argv := make([]*byte, len(args))
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	c := cConnect(len(argv), argv)
	runtime.KeepAlive(argv)
	if c == nil {
		return nil, errors.New("chdb: could not open the data path (another process may hold it: chDB locks its data path)")
	}
	return c, nil
}

// query runs q and returns a copy of its output in format; the error is
// ClickHouse's message.
func (c *connection) query(q, format string) ([]byte, error) {
	res := cQuery(c.internal, q, format)
	if res == nil {
		return nil, nil
	}
	defer cDestroy(res)
	if msg := cResultError(res); msg != "" {
		return nil, errors.New(msg)
	}
	n := cResultLength(res)
	buf := cResultBuffer(res)
	if n == 0 || buf == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(buf, n)...), nil
}

// insert runs query (an INSERT without FORMAT) with data in format as its
// input, the pieces one after the other, through chDB's streaming insert.
// Unlike data inlined in the query text, which chDB ends at the first
// empty line, data is taken whole: binary formats are safe.
func (c *connection) insert(query, format string, data [][]byte) error {
	st := cStreamInsert(c.internal, query, format)
	if st == nil {
		return errors.New("chdb: the streaming insert did not start")
	}
	defer cStreamDestroy(st)
	if msg := cStreamError(st); msg != "" {
		return errors.New(msg)
	}
	for _, piece := range data {
		if len(piece) == 0 {
			continue
		}
		rc := cStreamAppend(st, &piece[0], uint(len(piece)))
		runtime.KeepAlive(piece)
		if rc != chdbSuccess {
			msg := cStreamError(st)
			cStreamCancel(st)
			if msg == "" {
				msg = "chdb: the streaming insert refused the data"
			}
			return errors.New(msg)
		}
	}
	res := cStreamDone(st)
	if res == nil {
		return errors.New("chdb: the streaming insert ended without a result")
	}
	defer cDestroy(res)
	if msg := cResultError(res); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func (c *connection) close() { cClose(c) }
