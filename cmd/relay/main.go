// Command relay is the bucket notification relay daemon and its client.
//
//	relay serve --config FILE        run the relay
//	relay demo                       run it on an embedded default, no broker needed
//	relay events add|list|remove     manage bucket rules on a running relay (like `mc events`)
//	relay release --config FILE ARN --export FILE.jsonl
//	                                 export a removed target's backlog and let it go
//	relay targets [pause|resume|rewind ARN] live target status; hold, release or rewind a target
//	relay targets add|update|remove ARN  change targets of a running relay
//	relay status --config FILE       a cluster log's lanes: cursor, lag, owner (read-only)
//	relay quarantine list|show|retry|drop ARN  act on a target's quarantine
//	relay validate --config FILE     check a configuration file
//	relay version                    module version and VCS revision
//	relay watch BUCKET               print a bucket's events live (like `mc watch`)
//
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// errUsage marks errors that are the caller's (bad flags, arguments or
// configuration): exit code 2. usagef wraps a message with it.
var errUsage = errors.New("usage error")

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = (&serveCommand{}).Run(ctx, args[1:])
	case "demo":
		err = (&demoCommand{}).Run(ctx, args[1:])
	case "events":
		err = (&eventsCommand{}).Run(ctx, args[1:])
	case "release":
		err = (&releaseCommand{}).Run(ctx, args[1:])
	case "targets":
		err = (&targetsCommand{}).Run(ctx, args[1:])
	case "status":
		err = (&statusCommand{}).Run(ctx, args[1:])
	case "quarantine":
		err = (&quarantineCommand{}).Run(ctx, args[1:])
	case "validate":
		err = (&validateCommand{}).Run(ctx, args[1:])
	case "version", "--version", "-version":
		err = (&versionCommand{}).Run(ctx, args[1:])
	case "watch":
		err = (&watchCommand{}).Run(ctx, args[1:])
	case "help", "-h", "--help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "relay: unknown command %q\n", args[0])
		usage()
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "relay:", message(err))
		return 2
	default:
		fmt.Fprintln(os.Stderr, "relay:", message(err))
		return 1
	}
}

// message is err's text without a leading "relay: ", which the command
// already prints once.
func message(err error) string {
	return strings.TrimPrefix(err.Error(), "relay: ")
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: relay <command> [flags]

Commands:
  serve --config FILE     run the relay daemon (or: serve FILE)
  demo [--keep]           run the relay on an embedded default (a webhook
                          target to a built-in receiver), publish sample
                          events and show them delivered
  events add BUCKET ARN [--events put,delete,get] [--prefix P] [--suffix S]
  events list BUCKET [ARN] [--events ...] [--prefix P] [--suffix S]
  events remove BUCKET [ARN] [--events ...] [--force]
  release --config FILE ARN --export FILE.jsonl
                          export the backlog of a target no longer enabled,
                          then let the log drop it (relay stopped)
  targets [--json] [--watch]
                          every target's state, lag, oldest pending event,
                          counts, buckets and last error
  targets pause|resume ARN
  targets add ARN (--param key=value ... | --file FILE) [--from-start]
  targets update ARN (--param key=value ... | --file FILE)
  targets remove ARN [--force [--export FILE]]
                          change the targets of a running relay (kept in
                          its data directory)
  targets rewind ARN --to-time T | --to-seq N
                          deliver a target's retained events again from there
  status --config FILE [--json]
                          read a cluster log (relay.log kind jetstream)
                          read-only: per target lane its cursor, lag,
                          owner and quarantine count
  quarantine list|show|retry|drop ARN [--seq A-B] [--all] [--out FILE]
  validate --config FILE  check a configuration file; print ARNs and rules
  version                 module version and VCS revision (also --version)
  watch BUCKET [--events put,delete,get] [--prefix P] [--suffix S] [--json]
                          print the bucket's events as they are logged (like mc watch)

The commands that call a running relay find it at --server or RELAY_ADDR
(http://127.0.0.1:9900), with --token or RELAY_TOKEN; over HTTPS
(relay.tls) --cacert, --cert and --key or RELAY_CACERT, RELAY_CERT and
RELAY_KEY.

Run 'relay <command> -h' for a command's flags.
`)
}
