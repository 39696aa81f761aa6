// Package server is the store's ClickHouse server engine, through
// clickhouse-go over the native protocol. Importing it registers the
// engine "clickhouse" with package store; it is used when
// clickhouse.addr is set.
//
// Statements and inserts are the same SQL text the chDB engine runs.
// Select scans the typed columns the server returns and formats each
// value as ClickHouse's TabSeparated output would, so that callers read
// one format from both engines.
package server

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"vigia/internal/store"
)

func init() { store.Register("clickhouse", open) }

type engine struct{ conn driver.Conn }

func open(ctx context.Context, o store.Options) (store.Engine, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{o.Addr},
		Auth:        clickhouse.Auth{Database: "default", Username: o.Username, Password: o.Password},
		DialTimeout: 10 * time.Second,
		// Inserts are one big statement: allow it to take its time.
		ReadTimeout: 5 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	return &engine{conn: conn}, nil
}

func (e *engine) Name() string { return "clickhouse" }

func (e *engine) Exec(ctx context.Context, q string) error { return e.conn.Exec(ctx, q) }

func (e *engine) Select(ctx context.Context, q string, fn func([][]byte) error) error {
	rows, err := e.conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	dest := make([]any, len(types))
	for i, t := range types {
		dest[i] = reflect.New(t.ScanType()).Interface()
	}
	fields := make([][]byte, len(types))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		for i, d := range dest {
			fields[i] = appendTSV(fields[i][:0], reflect.ValueOf(d).Elem().Interface())
		}
		if err := fn(fields); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (e *engine) Close() error { return e.conn.Close() }

// appendTSV formats v as TabSeparated output does (before escaping, which
// callers of Select never see).
func appendTSV(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, `\N`...)
	case string:
		return append(b, v...)
	case time.Time:
		return v.UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
	case *time.Time:
		if v == nil {
			return append(b, `\N`...)
		}
		return v.UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
	case bool:
		return strconv.AppendBool(b, v)
	case float32:
		return strconv.AppendFloat(b, float64(v), 'g', -1, 32)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case map[string]string:
		return fmt.Appendf(b, "%v", v)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, rv.Uint(), 10)
	case reflect.Pointer:
		if rv.IsNil() {
			return append(b, `\N`...)
		}
		return appendTSV(b, rv.Elem().Interface())
	}
	return fmt.Append(b, v)
}
