package main

import (
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz/policytest"
)

func newPolicyTestCmd() *cobra.Command {
	var entities, junit, run string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the test cases beside the policies (*_test.yaml), like opa test",
		Long: `Run every *_test.yaml file under a policy directory. A file tests the set of the
directory it sits in (files at the root test "default") unless it names another
with set:. Each case is a request as meshguard builds it and the decision
expected, optionally with exactly the policies that must determine it:

  tests:
    - name: a customer reads an order
      principal: {user: dave, roles: [customer], claims: {email: dave@example.com}}
      action: GET                       # Action::"GET"
      resource: orders                  # Service::"orders"
      context: {request: {method: GET, path: /orders/42}}
      expect: allow
      policies: [orders-v2/read.cedar#customers-read]

A principal is {user: SUB, roles, claims} (claims are the User's attributes and
context.jwt), {workload: SPIFFE-ID} (with its namespace and service_account
attributes), anonymous, or {uid: 'Type::"id"', attrs}. See docs/policy-model.md.

Exit status: 0 every case passed, 1 some failed, 2 the policies or a test file
could not be read.`,
		Example: `  meshguard policy test examples/quickstart/policies --entities examples/quickstart/entities.json
  meshguard policy test ./policies --junit report.xml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter *regexp.Regexp
			if run != "" {
				var err error
				if filter, err = regexp.Compile(run); err != nil {
					return &exitError{2, fmt.Errorf("--run: %w", err)}
				}
			}
			results, err := policytest.Run(args[0], entities)
			if err != nil {
				return &exitError{2, err}
			}
			if filter != nil {
				kept := results[:0]
				for _, r := range results {
					if filter.MatchString(r.Name) {
						kept = append(kept, r)
					}
				}
				results = kept
			}
			failed := printResults(cmd.OutOrStdout(), results, verbose)
			if junit != "" {
				f, err := os.Create(junit)
				if err != nil {
					return &exitError{2, err}
				}
				if err := policytest.WriteJUnit(f, results); err != nil {
					f.Close()
					return &exitError{2, err}
				}
				if err := f.Close(); err != nil {
					return &exitError{2, err}
				}
			}
			if len(results) == 0 {
				return &exitError{2, fmt.Errorf("no test cases under %s (files named *_test.yaml)", args[0])}
			}
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&entities, "entities", "", "Cedar entities JSON, as the authorizer's entities key")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to this file")
	cmd.Flags().StringVar(&run, "run", "", "run only the cases whose name matches this regular expression")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print passing cases too")
	return cmd
}

// printResults prints failures (and passes with verbose) and the counts;
// it returns the number of failures.
func printResults(w io.Writer, results []policytest.Result, verbose bool) int {
	failed := 0
	for _, r := range results {
		switch {
		case !r.Pass:
			failed++
			fmt.Fprintf(w, "FAIL  %s:%d: %s\n      %s\n", r.File, r.Line, r.Name, r.Message)
		case verbose:
			fmt.Fprintf(w, "PASS  %s:%d: %s\n", r.File, r.Line, r.Name)
		}
	}
	fmt.Fprintln(w, "--------------------------------------------------------------------------------")
	fmt.Fprintf(w, "PASS: %d/%d\n", len(results)-failed, len(results))
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d/%d\n", failed, len(results))
	}
	return failed
}
