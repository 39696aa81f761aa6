// Package logging builds Vigia's JSON logger (log/slog) from the configured
// level. Stable keys: "err" for errors, "component" for the service part.
package logging

import (
	"io"
	"log/slog"
)

// New returns a JSON logger writing to w at level (debug, info, warn, error).
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
