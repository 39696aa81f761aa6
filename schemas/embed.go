// Package schemas holds Vigia's data contracts: the JSON schemas of the
// Kafka records (event.v1.json, alert.v1.json) and the ClickHouse DDL
// migrations (clickhouse/NNNN_name.sql), embedded so that the binaries
// apply the same DDL the repository shows.
package schemas

import "embed"

// ClickHouse holds the migrations, applied in file-name order.
//
//go:embed clickhouse/*.sql
var ClickHouse embed.FS
