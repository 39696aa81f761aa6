package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// setting is one scalar configuration key, reachable as a flag and an
// environment variable.
type setting struct {
	Key    string // kafka.brokers
	Env    string // VIGIA_KAFKA_BROKERS
	Help   string
	Secret bool
	field  reflect.Value
}

// settings walks cfg and returns one setting per scalar (or string list)
// field; struct lists such as meta.phone_numbers exist only in YAML.
func settings(cfg *Config) []setting {
	var out []setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(fv, key)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.String:
				// lists of structs: YAML only
			default:
				out = append(out, setting{
					Key:    key,
					Env:    "VIGIA_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
					Help:   f.Tag.Get("help"),
					Secret: f.Tag.Get("secret") == "true",
					field:  fv,
				})
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return out
}

// set parses text into the setting's field according to its type.
func (s setting) set(text string) error {
	f := s.field
	switch {
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("not a duration (like 10s or 5m): %q", text)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(text)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", text)
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int, f.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", text)
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice:
		var list []string
		for _, p := range strings.Split(text, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// flagValue collects a flag's text; it is applied after the file and the
// environment, so that flags win whatever their order on the command line.
type flagValue struct {
	text *string
	set  *bool
}

func (v flagValue) String() string {
	if v.text == nil {
		return ""
	}
	return *v.text
}
func (v flagValue) Set(s string) error { *v.text, *v.set = s, true; return nil }

// boolFlagValue lets a boolean setting be given bare: --kafka.raw_enabled.
type boolFlagValue struct{ flagValue }

func (boolFlagValue) IsBoolFlag() bool { return true }

// Load builds the configuration for a program named name from defaults, the
// YAML file named by --config.file (or VIGIA_CONFIG_FILE), VIGIA_*
// environment variables and flags, then validates it. getenv is os.Getenv in
// production. Usage goes to usage on -h. The error lists every problem.
func Load(name string, args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	cfg := Default()
	list := settings(&cfg)

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	file := fs.String("config.file", getenv("VIGIA_CONFIG_FILE"), "YAML configuration file (env VIGIA_CONFIG_FILE)")
	texts := make([]string, len(list))
	isSet := make([]bool, len(list))
	for i, s := range list {
		var v flag.Value = flagValue{&texts[i], &isSet[i]}
		if s.field.Kind() == reflect.Bool {
			v = boolFlagValue{flagValue{&texts[i], &isSet[i]}}
		}
		fs.Var(v, s.Key, fmt.Sprintf("%s (env %s)", s.Help, s.Env))
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var problems []error
	if *file != "" {
		if err := decodeFile(*file, &cfg); err != nil {
			return cfg, err
		}
	}
	for _, s := range list {
		if v := getenv(s.Env); v != "" {
			if err := s.set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s (env %s): %w", s.Key, s.Env, err))
			}
		}
	}
	for i, s := range list {
		if isSet[i] {
			if err := s.set(texts[i]); err != nil {
				problems = append(problems, fmt.Errorf("%s (flag --%s): %w", s.Key, s.Key, err))
			}
		}
	}
	if len(problems) > 0 {
		return cfg, errors.Join(problems...)
	}
	return cfg, cfg.ValidateFor(name)
}

// decodeFile reads path strictly: unknown keys are errors, with their line.
func decodeFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Describe lists every setting with its current value (secrets masked), for
// the startup log and `--help`-style documentation.
func Describe(cfg *Config) [][3]string {
	var out [][3]string
	for _, s := range settings(cfg) {
		val := fmt.Sprint(s.field.Interface())
		if s.Secret && !s.field.IsZero() {
			val = "<secret>"
		}
		out = append(out, [3]string{s.Key, s.Env, val})
	}
	return out
}

// LoadCommand is Load for a command's main: it reads os.Args-style args and
// the process environment, and on failure writes the problems to stderr
// and returns the exit code (0 after -h, 2 for a bad configuration).
func LoadCommand(name string, args []string, stderr io.Writer) (cfg Config, exitCode int, ok bool) {
	cfg, err := Load(name, args, os.Getenv, stderr)
	switch {
	case err == nil:
		return cfg, 0, true
	case errors.Is(err, flag.ErrHelp):
		return cfg, 0, false
	}
	fmt.Fprintf(stderr, "%s: invalid configuration:\n  %s\n", name, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	return cfg, 2, false
}
