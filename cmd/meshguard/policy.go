package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with Cedar policy directories",
	}
	var entities string
	validate := &cobra.Command{
		Use:   "validate DIR",
		Short: "Parse every policy set under DIR and report errors with file:line",
		Long: `Parse a policy directory exactly as the authorizer does: *.cedar files at the
root form the set "default", each subdirectory forms a set of its name. Policy
IDs are <set>/<file>#<@id or index>; a duplicate ID is an error.

Exits non-zero if any set fails.`,
		Example: `  meshguard policy validate examples/quickstart/policies`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store := policy.NewStore(args[0], entities, policy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			err := store.Reload()
			out := cmd.OutOrStdout()
			for _, s := range store.Status().Sets {
				if s.LastError != "" {
					fmt.Fprintf(out, "FAIL %-20s %s\n", s.Name, s.LastError)
					continue
				}
				fmt.Fprintf(out, "ok   %-20s %3d policies  version %s\n", s.Name, s.Policies, s.Version)
			}
			return err
		},
	}
	validate.Flags().StringVar(&entities, "entities", "", "also validate this Cedar entities JSON file")
	cmd.AddCommand(validate, newPolicyTestCmd(), newPolicyReplayCmd())
	return cmd
}
