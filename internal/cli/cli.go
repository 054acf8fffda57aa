// Package cli is what the programs' main functions share: run the root
// command with a context that Ctrl-C (or SIGTERM) cancels, print the error
// under the program's name and exit with a status that says what happened.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// ExitError carries a specific exit status out of a command (for example 2
// for "the file is damaged" from pack verify). The command has said what
// happened, so Main prints nothing more for it.
type ExitError int

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Status is the exit status for err: an ExitError's own, 130 for an
// interrupted run (the shell's convention for SIGINT), else 1.
func Status(err error) int {
	var ee ExitError
	switch {
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, context.Canceled):
		return 130
	default:
		return 1
	}
}

// Message is err as the program name prints it: "name: error", where an
// error already prefixed by a package of the same name (package pack's
// "pack: ..." under the pack command) is not prefixed twice.
func Message(name string, err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, name+": ") {
		return msg
	}
	return name + ": " + msg
}

// Main runs root and exits with Status of its error, which it prints as
// "name: error" on standard error (except a bare ExitError, whose command
// has already explained itself). The first Ctrl-C (or SIGTERM) cancels the
// command's context, so that it stops cleanly; a second one exits at once
// with status 130, for a command stuck where it cannot stop.
func Main(name string, root *cobra.Command) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, name+": interrupted twice: exiting without cleaning up")
		os.Exit(130)
	}()
	err := root.ExecuteContext(ctx)
	signal.Stop(sig)
	cancel()
	if err != nil {
		if _, bare := err.(ExitError); !bare {
			fmt.Fprintln(os.Stderr, Message(name, err))
		}
		os.Exit(Status(err))
	}
}
