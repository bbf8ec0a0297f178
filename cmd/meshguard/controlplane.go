package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/bootstrap"
	"github.com/meshguard/meshguard/controlplane/source"
	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/internal/admincmd"
	"github.com/meshguard/meshguard/internal/telemetry"
	"github.com/meshguard/meshguard/internal/xds"
)

func newControlPlaneCmd() *cobra.Command {
	var cfg controlplane.Config
	var logLevel, tokenFile string
	var tlsConf identity.TLSConfig
	var kf kubeFlags
	cmd := &cobra.Command{
		Use:   "controlplane --mesh FILE | --kubernetes",
		Short: "Run the xDS control plane (ADS, SotW and Delta, SDS included)",
		Long: `Serve Envoy configuration for every workload of a mesh over ADS.

The mesh file (docs/mesh-model.md) is validated, translated for each sidecar
workload (node id = workload name) and served over one gRPC port: SotW and
incremental ADS, with SDS secrets (SVIDs from the embedded dev CA) on the same
stream. Types are versioned by content, so unchanged config is never re-pushed;
a proxy that rejects (NACKs) a version keeps its last good config and is not
sent that version again. Edits to the mesh file are applied on save; a bad
edit keeps the last good mesh and is reported on the admin listener.

A node's private key (its SVID, with the meshguard identity provider) goes
only to a stream that proves it is the node's workload: over mTLS
(--tls-* or --workload-api), the peer whose SPIFFE ID is the workload's; on
the Unix socket (--socket or the mesh's spec.xds.socket), a peer the kernel
says runs as the workload's uid. Other streams get configuration, never
keys. --insecure-loopback-sds also serves keys to any plaintext loopback
peer that names a node: for a single-user development host only (meshguard
up uses it).

Rollouts (route.rollout in the mesh file) are moved by the rollout controller:
every --rollout-interval it reads each authorizer's rollout counts (--authz-admin,
every replica), judges the rollout's gates, and promotes, rolls back or pauses.
Its state and audit trail live in --rollout-dir and survive restarts.

With --kubernetes the mesh comes from the cluster instead of a file
(docs/kubernetes.md): the Mesh named by --mesh-name, every MeshService
(workloads from their Services' EndpointSlices and Pods) and the PolicySets
and WasmFilters of --namespace. Objects that fail validation are reported in
their status (Accepted False, with the field) and keep their last accepted
version. Replicas elect a leader (a Lease in --namespace) that writes
statuses, judges rollout gates and creates the shared dev CA (Secret
meshguard-dev-ca); every replica serves xDS.

Admin: /v1/proxies (proxy status, also 'meshguard status'), /v1/rollouts
('meshguard rollout status'; POST /v1/rollouts/{promote,rollback,pause,resume}
for 'meshguard rollout ...', which need --admin-token-file unless the admin
listener is loopback), /metrics, /healthz, /readyz.`,
		Example: `  meshguard controlplane --mesh examples/quickstart/mesh.yaml --admin 127.0.0.1:18001
  meshguard status --admin 127.0.0.1:18001

  # in a cluster (the Helm chart runs this)
  meshguard controlplane --kubernetes --namespace meshguard --listen :18000 --admin :18001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := telemetry.NewLogger(os.Stderr, logLevel, "text")
			if err != nil {
				return err
			}
			if tlsConf.WorkloadAPI != "" || tlsConf.CertFile != "" {
				if err := tlsConf.Validate(); err != nil {
					return fmt.Errorf("mTLS flags: %w", err)
				}
				cfg.TLS = &tlsConf
			}
			if tokenFile != "" {
				tok, err := admincmd.ReadToken(tokenFile)
				if err != nil {
					return err
				}
				cfg.AdminToken = tok
			}
			if kf.enabled {
				return runOnKubernetes(cmd.Context(), kf, cfg, log)
			}
			s, err := controlplane.New(cfg, log)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&cfg.MeshPath, "mesh", "", "mesh file (YAML)")
	cmd.Flags().StringVar(&cfg.Listen, "listen", "", "ADS gRPC address (default: the mesh's spec.xds.address)")
	cmd.Flags().StringVar(&cfg.AdminListen, "admin", "127.0.0.1:18001", "admin HTTP address (status, metrics)")
	cmd.Flags().StringVar(&cfg.CADir, "ca-dir", "", "dev CA directory (default: .meshguard/ca beside the mesh file; on Kubernetes the CA is a Secret)")
	cmd.Flags().DurationVar(&cfg.SVIDTTL, "svid-ttl", time.Hour, "lifetime of issued SVIDs (rotated at half-life)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&tlsConf.WorkloadAPI, "workload-api", "", "serve ADS over mTLS with the SVID from this SPIFFE Workload API (unix:///…)")
	cmd.Flags().StringVar(&tlsConf.CertFile, "tls-cert", "", "serve ADS over mTLS with this SVID certificate (with --tls-key, --tls-bundle)")
	cmd.Flags().StringVar(&tlsConf.KeyFile, "tls-key", "", "SVID private key")
	cmd.Flags().StringVar(&tlsConf.BundleFile, "tls-bundle", "", "trust bundle")
	cmd.Flags().StringSliceVar(&tlsConf.TrustDomains, "allowed-trust-domain", nil, "with mTLS: trust domains whose workloads may connect")
	cmd.Flags().StringSliceVar(&tlsConf.IDs, "allowed-id", nil, "with mTLS: SPIFFE IDs that may connect")
	cmd.Flags().StringVar(&cfg.Socket, "socket", "", "also serve ADS on this Unix socket, keys only to peers running as the workload's uid (default: the mesh's spec.xds.socket)")
	cmd.Flags().BoolVar(&cfg.InsecureLoopbackSecrets, "insecure-loopback-sds", false, "INSECURE: serve workload keys to any plaintext loopback peer naming a node (single-user development hosts)")
	cmd.Flags().StringSliceVar(&cfg.AuthzAdmin, "authz-admin", nil, "admin address of every authorizer replica, whose rollout counts the gates judge (repeat or comma-separate)")
	cmd.Flags().StringVar(&cfg.RolloutDir, "rollout-dir", "", "rollout state and audit trail (default: .meshguard/rollouts beside the mesh file)")
	cmd.Flags().DurationVar(&cfg.RolloutInterval, "rollout-interval", 10*time.Second, "how often rollout gates are judged")
	cmd.Flags().StringVar(&tokenFile, "admin-token-file", "", "file holding the bearer token admin commands need (at least 16 characters)")
	kf.register(cmd)
	cmd.MarkFlagsOneRequired("mesh", "kubernetes")
	cmd.MarkFlagsMutuallyExclusive("mesh", "kubernetes")
	return cmd
}

func newBootstrapCmd() *cobra.Command {
	var mesh, workload, out string
	var grpcFlavour bool
	var files bootstrap.GRPCFiles
	cmd := &cobra.Command{
		Use:   "bootstrap --mesh FILE --workload NAME",
		Short: "Write the Envoy bootstrap for a workload's sidecar",
		Long: `Write a complete Envoy v3 bootstrap for one workload: node id (the workload
name) and cluster (its service), admin on loopback, and ADS over gRPC to the
control plane (spec.xds.address) for listeners, clusters, routes, endpoints and
secrets. The result passes go-control-plane's ValidateAll(), including every
typed config inside it.

With --grpc, write instead the gRPC-Go xDS bootstrap (JSON) of a proxyless
workload: the control plane as xDS server, the server listener name template,
and a file_watcher certificate provider over the workload's SVID files.`,
		Example: `  meshguard bootstrap --mesh examples/quickstart/mesh.yaml --workload orders-0 > orders-0.yaml
  envoy -c orders-0.yaml

  meshguard bootstrap --mesh mesh.yaml --workload frontend-0 --grpc \
    --cert svid/cert.pem --key svid/key.pem --ca svid/bundle.pem > bootstrap.json
  GRPC_XDS_BOOTSTRAP=bootstrap.json ./frontend`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadMesh(mesh)
			if err != nil {
				return err
			}
			var y []byte
			if grpcFlavour {
				if y, err = bootstrap.GRPC(m, workload, files); err != nil {
					return err
				}
				y = append(y, '\n')
			} else {
				b, err := bootstrap.Envoy(m, workload)
				if err != nil {
					return err
				}
				if y, err = toYAML(b); err != nil {
					return err
				}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			return os.WriteFile(out, y, 0o644)
		},
	}
	cmd.Flags().StringVar(&mesh, "mesh", "", "mesh file")
	cmd.Flags().StringVar(&workload, "workload", "", "workload name (the Envoy node id)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file (default: standard output)")
	cmd.Flags().BoolVar(&grpcFlavour, "grpc", false, "write the gRPC-Go xDS bootstrap of a proxyless workload")
	cmd.Flags().StringVar(&files.Cert, "cert", "/etc/meshguard/svid/cert.pem", "with --grpc: the workload's SVID certificate file")
	cmd.Flags().StringVar(&files.Key, "key", "/etc/meshguard/svid/key.pem", "with --grpc: its private key file")
	cmd.Flags().StringVar(&files.CA, "ca", "/etc/meshguard/svid/bundle.pem", "with --grpc: the trust bundle file")
	_ = cmd.MarkFlagRequired("mesh")
	_ = cmd.MarkFlagRequired("workload")
	return cmd
}

func newTranslateCmd() *cobra.Command {
	var mesh, workload string
	cmd := &cobra.Command{
		Use:   "translate --mesh FILE --workload NAME",
		Short: "Print the Envoy resources a workload's sidecar would get (offline)",
		Long: `Run the control plane's pipeline offline — validate the mesh, translate it for
one workload — and print the listeners, routes, clusters and endpoints as YAML.
Nothing is served; use it to review what a mesh edit changes.`,
		Example: `  meshguard translate --mesh examples/quickstart/mesh.yaml --workload orders-0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadMesh(mesh)
			if err != nil {
				return err
			}
			fn := translate.Workload
			if _, w, ok := m.Workload(workload); ok && w.Proxyless {
				fn = translate.Proxyless
			}
			res, err := fn(m, workload)
			if err != nil {
				return err
			}
			doc := map[string][]any{}
			add := func(key string, msgs []proto.Message) error {
				for _, msg := range msgs {
					v, err := toValue(msg)
					if err != nil {
						return err
					}
					doc[key] = append(doc[key], v)
				}
				return nil
			}
			for _, x := range []struct {
				key  string
				msgs []proto.Message
			}{
				{"listeners", msgs(res.Listeners)}, {"routes", msgs(res.Routes)},
				{"clusters", msgs(res.Clusters)}, {"endpoints", msgs(res.Endpoints)},
			} {
				if err := add(x.key, x.msgs); err != nil {
					return err
				}
			}
			if len(res.Secrets) > 0 {
				doc["secrets (served by SDS)"] = []any{strings.Join(res.Secrets, ", ")}
			}
			y, err := yaml.Marshal(doc)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(y)
			return err
		},
	}
	cmd.Flags().StringVar(&mesh, "mesh", "", "mesh file")
	cmd.Flags().StringVar(&workload, "workload", "", "workload name")
	_ = cmd.MarkFlagRequired("mesh")
	_ = cmd.MarkFlagRequired("workload")
	return cmd
}

func newStatusCmd() *cobra.Command {
	var admin string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each proxy's sync state (like istioctl proxy-status)",
		Long: `Ask the control plane's admin listener which proxies are connected and, per
resource type, whether each has the current config:

  SYNCED    the proxy ACKed the current version
  STALE     a version was sent and not (yet) ACKed
  NACKED    the proxy rejected the current version (it keeps its last good config)
  NOT SENT  the proxy has not asked for or been sent this type`,
		Example: `  meshguard status --admin 127.0.0.1:18001`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get("http://" + admin + "/v1/proxies")
			if err != nil {
				return fmt.Errorf("control plane admin at %s: %w", admin, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			if err != nil {
				return err
			}
			if asJSON {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			var r controlplane.StatusReport
			if err := json.Unmarshal(body, &r); err != nil {
				return fmt.Errorf("status from %s: %w", admin, err)
			}
			return printStatus(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "127.0.0.1:18001", "control plane admin address")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	return cmd
}

var statusColumns = []struct{ head, typ string }{
	{"CDS", "Cluster"}, {"LDS", "Listener"}, {"EDS", "ClusterLoadAssignment"}, {"RDS", "RouteConfiguration"}, {"SDS", "Secret"},
}

func printStatus(w io.Writer, r controlplane.StatusReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "NAME\tCLUSTER\tCONNECTED")
	for _, c := range statusColumns {
		fmt.Fprint(tw, "\t"+c.head)
	}
	fmt.Fprintln(tw)
	for _, p := range r.Proxies {
		fmt.Fprintf(tw, "%s\t%s\t%v", p.Node, p.Cluster, p.Connected)
		for _, c := range statusColumns {
			st, ok := p.Types[c.typ]
			switch {
			case !ok:
				fmt.Fprint(tw, "\t-")
			case st.State == xds.Nacked:
				fmt.Fprintf(tw, "\tNACKED (%s)", oneLine(st.Error, 60))
			default:
				fmt.Fprint(tw, "\t"+st.State)
			}
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.LastError != "" {
		fmt.Fprintf(w, "\nmesh %s: last reload failed (serving the last good mesh):\n%s\n", r.Mesh, r.LastError)
	}
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func loadMesh(path string) (*modelMesh, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := source.Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func msgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func toValue(m proto.Message) (any, error) {
	js, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(js, &v)
}

func toYAML(m proto.Message) ([]byte, error) {
	v, err := toValue(m)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(v)
}
