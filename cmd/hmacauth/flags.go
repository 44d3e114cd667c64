package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// cmdFlags is a flag.FlagSet whose flags fall back on environment
// variables, with help that shows them and the command's examples.
type cmdFlags struct {
	fs       *flag.FlagSet
	e        *env
	name     string // "hmacauth tunnel server"
	synopsis string
	examples string
	envOf    map[string]string // flag name → environment variable

	logFormat, logLevel string
}

func newCmdFlags(e *env, name, synopsis, examples string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.Usage = func() {}
	return &cmdFlags{fs: fs, e: e, name: name, synopsis: synopsis, examples: examples, envOf: map[string]string{}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (c *cmdFlags) withEnv(name, envVar, usage string) string {
	if envVar == "" {
		return usage
	}
	c.envOf[name] = envVar
	return usage + " (env " + envVar + ")"
}

func (c *cmdFlags) stringVar(p *string, name, envVar, def, usage string) {
	c.fs.StringVar(p, name, def, c.withEnv(name, envVar, usage))
}

func (c *cmdFlags) durationVar(p *time.Duration, name, envVar string, def time.Duration, usage string) {
	c.fs.DurationVar(p, name, def, c.withEnv(name, envVar, usage))
}

func (c *cmdFlags) boolVar(p *bool, name, envVar string, def bool, usage string) {
	c.fs.BoolVar(p, name, def, c.withEnv(name, envVar, usage))
}

// logFlags adds --log-format and --log-level.
func (c *cmdFlags) logFlags() {
	c.stringVar(&c.logFormat, "log-format", "HMACAUTH_LOG_FORMAT", "text", "log format on stderr: text or json")
	c.stringVar(&c.logLevel, "log-level", "HMACAUTH_LOG_LEVEL", "info", "log level: debug, info, warn or error")
}

// errHelp is returned by parse when --help was asked for and printed.
var errHelp = errors.New("help printed")

// parse parses args, allowing flags before and after positional
// arguments, then fills flags not given on the command line from their
// environment variables. It prints help for --help and returns errHelp; a
// bad command line returns an error to report with exit code 2.
func (c *cmdFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help()
				return nil, errHelp
			}
			return nil, err
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	given := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	c.fs.VisitAll(func(f *flag.Flag) {
		envVar, ok := c.envOf[f.Name]
		if !ok || given[f.Name] {
			return
		}
		if v, ok := lookupEnv(c.e, envVar); ok {
			if err := c.fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %v", envVar, v, err))
			}
		}
	})
	if c.logFormat != "text" && c.logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.logFormat))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	return pos, errors.Join(errs...)
}

func lookupEnv(e *env, name string) (string, bool) {
	v := e.getenv(name)
	return v, v != ""
}

// usageErr reports a bad command line and returns exitUsage, or exitOK for
// errHelp.
func (c *cmdFlags) usageErr(err error) int {
	if errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(c.e.stderr, "%s: %v\nRun '%s --help' for usage.\n", c.name, err, c.name)
	return exitUsage
}

func (c *cmdFlags) help() {
	w := c.e.stdout
	fmt.Fprintf(w, "Usage:\n  %s\n\n", c.synopsis)
	fmt.Fprintln(w, "Flags:")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(discard{})
	if c.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s", c.examples)
	}
	fmt.Fprint(w, exitCodesHelp)
}

const exitCodesHelp = `
Exit codes: 0 success (including a shutdown asked for by SIGINT or SIGTERM),
1 runtime failure, 2 usage error, 3 authentication refused (probe).
`

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// logger builds the logger the flags ask for, writing to stderr.
func (c *cmdFlags) logger() *slog.Logger {
	level, _ := parseLevel(c.logLevel) // checked by parse
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.logFormat, "json") {
		return slog.New(slog.NewJSONHandler(c.e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(c.e.stderr, opts))
}

// required returns an error naming the first empty required flag.
func (c *cmdFlags) required(names ...string) error {
	for _, n := range names {
		f := c.fs.Lookup(n)
		if f.Value.String() == "" {
			if envVar, ok := c.envOf[n]; ok {
				return fmt.Errorf("--%s is required (or set %s)", n, envVar)
			}
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}
