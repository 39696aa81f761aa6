// Command control is the control API: it tells the sending applications
// which WhatsApp number, or which channel, each use case sends through
// now, and changes it when an operator or a rule says so.
//
//	control [flags]               serve the API and run the automation
//	control check <routes.yaml>   validate a routes file
//	control hash-token            read a token on stdin, print its sha256 for control.tokens
//
// It reads the same configuration as the other services (YAML file,
// VIGIA_* variables, flags; -h lists them); the control.* settings and
// the routes file describe it. docs/control.md is the guide.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"vigia/internal/app"
	"vigia/internal/config"
	"vigia/internal/control"
	"vigia/internal/logging"
	"vigia/internal/route"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return check(args[1:], stdout, stderr)
		case "hash-token":
			return hashToken(stdin, stdout, stderr)
		}
	}
	cfg, code, ok := config.LoadCommand("control", args, stderr)
	if !ok {
		return code
	}
	log := logging.New(stderr, cfg.Log.Level).With("component", "control")
	svc, err := app.NewControl(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "control: %s\n", err)
		return 1
	}
	return app.Run("control", svc, log, nil)
}

func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: control check <routes.yaml>")
		return 2
	}
	f, err := route.LoadFile(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	numbers := len(f.NumberIDs())
	fmt.Fprintf(stdout, "%s: %d use cases, %d numbers, hash %s\n", args[0], len(f.UseCases), numbers, f.Hash)
	return 0
}

func hashToken(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	token := strings.TrimSpace(line)
	if err != nil && err != io.EOF || token == "" {
		fmt.Fprintln(stderr, "usage: echo -n \"$TOKEN\" | control hash-token")
		return 2
	}
	if len(token) < 16 {
		fmt.Fprintln(stderr, "control hash-token: a token needs at least 16 characters; use a long random one (openssl rand -hex 24)")
		return 1
	}
	fmt.Fprintln(stdout, control.HashToken(token))
	return 0
}
