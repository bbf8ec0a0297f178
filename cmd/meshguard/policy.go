package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/schema"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with Cedar policy directories: validate, test, replay, schema",
	}
	cmd.AddCommand(newPolicyValidateCmd(), newPolicySchemaCmd(), newPolicyTestCmd(), newPolicyReplayCmd(), newPolicySyncCmd())
	return cmd
}

// schemaFlags choose the schema a command type-checks against: --schema,
// else the authorizer configuration's (schema_file, or the built-in schema
// with its request_headers), else the built-in schema with the default
// headers.
type schemaFlags struct {
	config, file string
	actions      []string
}

func (f *schemaFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.config, "config", "", "authorizer configuration: its request_headers, schema_file, policies and entities")
	cmd.Flags().StringVar(&f.file, "schema", "", "Cedar schema file to use instead of the built-in one")
	cmd.Flags().StringSliceVar(&f.actions, "action", nil, "with the built-in schema: an action name routes give (meshguard.action), beside the HTTP methods")
}

// load returns the authorizer configuration (nil without --config) and
// the checker.
func (f *schemaFlags) load() (*extauthz.Config, *schema.Checker, error) {
	var cfg *extauthz.Config
	headers := extauthz.DefaultRequestHeaders
	if f.config != "" {
		c, err := extauthz.LoadConfig(f.config)
		if err != nil {
			return nil, nil, err
		}
		cfg, headers = c, c.RequestHeaders
		if f.file == "" {
			f.file = c.SchemaFile
		}
	}
	if f.file != "" {
		if len(f.actions) > 0 {
			return nil, nil, errors.New("--action adds to the built-in schema: declare the actions in your schema file instead")
		}
		c, err := schema.Load(f.file)
		return cfg, c, err
	}
	return cfg, schema.Builtin(schema.Options{Headers: headers, Actions: f.actions}), nil
}

func newPolicyValidateCmd() *cobra.Command {
	var entities string
	var sf schemaFlags
	var noSchema bool
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Parse and type-check every policy set under DIR, reporting errors with file:line",
		Long: `Parse a policy directory exactly as the authorizer does: *.cedar files at the
root form the set "default", each subdirectory forms a set of its name. Policy
IDs are <set>/<file>#<@id or index>; a duplicate ID is an error.

Then type-check every policy against the Cedar schema of meshguard's request
model (principal User, Workload or Anonymous; Role; Service; an action per HTTP
method; the context record; see 'meshguard policy schema'): a misspelt
attribute, entity type or action, or an optional attribute read without 'has',
is reported with its file, line and column. The authorizer refuses such a set
when its configuration says strict_schema: true.

With --config, the authorizer's own configuration decides: its request_headers
(the headers policies may read), its schema_file, and its policies and entities
when DIR and --entities are not given.

Exits non-zero if any set fails.`,
		Example: `  meshguard policy validate examples/quickstart/policies
  meshguard policy validate --config examples/quickstart/authz.yaml
  meshguard policy validate ./policies --schema my.cedarschema
  meshguard policy validate ./policies --action approve   # routes with meshguard.action: approve`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, checker, err := sf.load()
			if err != nil {
				return err
			}
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			} else if cfg != nil {
				dir = cfg.Policies
				if entities == "" {
					entities = cfg.Entities
				}
			} else {
				return errors.New("a policy directory is required (or --config)")
			}
			opts := []policy.StoreOption{policy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
			if !noSchema {
				opts = append(opts, policy.WithSchema(checker))
			}
			store := policy.NewStore(dir, entities, opts...)
			err = store.Reload()
			out := cmd.OutOrStdout()
			if !noSchema {
				fmt.Fprintf(out, "schema: %s\n", checker.Name())
			}
			st := store.Status()
			for _, s := range st.Sets {
				if s.LastError != "" {
					lines := strings.Split(s.LastError, "\n")
					fmt.Fprintf(out, "FAIL %-20s %s\n", s.Name, lines[0])
					for _, l := range lines[1:] {
						fmt.Fprintf(out, "     %-20s %s\n", "", l)
					}
					continue
				}
				fmt.Fprintf(out, "ok   %-20s %3d policies  version %s\n", s.Name, s.Policies, s.Version)
			}
			if st.EntitiesError != "" {
				fmt.Fprintf(out, "FAIL %-20s %s\n", "(entities)", st.EntitiesError)
			}
			if err != nil {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&entities, "entities", "", "also validate this Cedar entities JSON file")
	cmd.Flags().BoolVar(&noSchema, "no-schema", false, "parse only; do not type-check")
	sf.add(cmd)
	return cmd
}

func newPolicySchemaCmd() *cobra.Command {
	var sf schemaFlags
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the Cedar schema of meshguard's request model",
		Long: `Print the Cedar schema (Cedar schema syntax) that 'meshguard policy validate' and
the authorizer's strict_schema type-check policies against: the entity types
User (in Role; attributes: common token claims), Role, Workload (trust_domain,
path, namespace, service_account), Anonymous and Service; one action per HTTP
method (plus --action names); and the context record (request with the
allow-listed headers, source, jwt, route).

Your tokens carry claims of your own, or your entities file adds types? Save
this schema, extend it, and set schema_file in the authorizer's configuration.`,
		Example: `  meshguard policy schema > meshguard.cedarschema
  meshguard policy schema --config examples/quickstart/authz.yaml --action approve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := sf.config
			headers := extauthz.DefaultRequestHeaders
			if cfg != "" {
				c, err := extauthz.LoadConfig(cfg)
				if err != nil {
					return err
				}
				headers = c.RequestHeaders
			}
			_, err := cmd.OutOrStdout().Write(schema.Text(schema.Options{Headers: headers, Actions: sf.actions}))
			return err
		},
	}
	cmd.Flags().StringVar(&sf.config, "config", "", "authorizer configuration: the schema lists its request_headers")
	cmd.Flags().StringSliceVar(&sf.actions, "action", nil, "an action name routes give (meshguard.action), beside the HTTP methods")
	return cmd
}
