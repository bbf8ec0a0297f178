// Command meshguard is the zero-trust toolkit for Envoy meshes: one binary
// with a subcommand per role.
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "meshguard:", err)
		os.Exit(1)
	}
}

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
	root.AddCommand(newUpCmd(), newAuthzCmd(), newControlPlaneCmd(), newBootstrapCmd(), newStatusCmd(), newTranslateCmd(), newIdentityCmd(), newPolicyCmd(), newDemoCmd(), newVersionCmd())
	return root
}
