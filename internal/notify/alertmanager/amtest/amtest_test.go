package amtest

import (
	"fmt"
	"runtime"
	"testing"
)

// recorder is a testing.TB whose Skip and Fatal end the calling goroutine
// and record how it ended, so that Start's behaviour without a binary can
// be checked without ending the test that checks it.
type recorder struct {
	testing.TB
	how, msg string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.end("skip", fmt.Sprintf(format, args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.end("fatal", fmt.Sprint(args...)) }
func (r *recorder) end(how, msg string)               { r.how, r.msg = how, msg; runtime.Goexit() }
func (r *recorder) Cleanup(func())                    {}
func (r *recorder) TempDir() string                   { return r.TB.TempDir() }
func (r *recorder) Logf(format string, args ...any)   {}
func (r *recorder) Errorf(format string, args ...any) { r.end("fatal", fmt.Sprintf(format, args...)) }
func (r *recorder) Skip(args ...any)                  { r.end("skip", fmt.Sprint(args...)) }

func startWithout(t *testing.T) *recorder {
	saved := binaries
	binaries = []string{"/nonexistent/alertmanager"}
	t.Cleanup(func() { binaries = saved })
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r, "http://127.0.0.1:1/hook")
		r.how = "started"
	}()
	<-done
	return r
}

func TestStartWithoutBinary(t *testing.T) {
	t.Setenv(RequireEnv, "")
	if r := startWithout(t); r.how != "skip" {
		t.Errorf("without %s: %s (%s), want a skip", RequireEnv, r.how, r.msg)
	}
	t.Setenv(RequireEnv, "1")
	if r := startWithout(t); r.how != "fatal" {
		t.Errorf("with %s=1: %s (%s), want a failure", RequireEnv, r.how, r.msg)
	}
}
