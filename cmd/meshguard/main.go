// Command meshguard is the zero-trust toolkit for Envoy meshes: one binary
// with a subcommand per role.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		var ex *exitError
		if errors.As(err, &ex) {
			if ex.err != nil {
				fmt.Fprintln(os.Stderr, "meshguard:", ex.err)
			}
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "meshguard:", err)
		os.Exit(1)
	}
}

// exitError ends the command with a given exit code: commands whose code
// means something (policy replay: 1 changes, 2 error) return one. A nil
// err prints nothing more.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshguard",
		Short: "Zero-trust toolkit for Envoy meshes",
		Long: `meshguard turns plain Envoy sidecars into a zero-trust mesh: an ext_authz server
that verifies JWTs and SPIFFE identities and decides with Cedar policies per route,
an xDS control plane, SPIFFE identities for mTLS, and proxy-wasm filters.

Each role is a subcommand; run 'meshguard <command> --help' for details.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(), newAuthzCmd(), newControlPlaneCmd(), newBootstrapCmd(), newStatusCmd(), newTranslateCmd(), newIdentityCmd(), newPolicyCmd(), newRolloutCmd(), newRateLimitCmd(), newRevokeCmd(), newAuditCmd(), newDemoCmd(), newVersionCmd())
	return root
}
