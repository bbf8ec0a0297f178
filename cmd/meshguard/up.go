package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/bootstrap"
	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/gctune"
)

// Addresses of the embedded defaults (docs/quickstart in README).
const (
	upCPAdmin    = "127.0.0.1:18001"
	upFrontendUI = "127.0.0.1:8000"
	proxylessTTL = 24 * time.Hour
)

type upOptions struct {
	configDir       string
	runDir          string
	envoy           bool
	rolloutInterval time.Duration
}

func newUpCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up --config DIR",
		Short: "Run the whole mesh on this machine: control plane, authorizer, demo workloads",
		Long: `Start, in one command, everything the quickstart needs on embedded defaults:

  - the authorizer (DIR/authz.yaml): ext_authz gRPC, HTTP service and admin;
  - the control plane (DIR/mesh.yaml): ADS with SDS from the embedded dev CA
    (kept in the run directory and reused on the next start), admin on 127.0.0.1:18001;
  - an Envoy bootstrap per sidecar workload and a gRPC xDS bootstrap plus SVID
    files per proxyless workload, written into the run directory;
  - the demo workloads as processes: frontend (HTTP for you on 127.0.0.1:8000)
    calling orders over proxyless gRPC with mTLS, orders asking the authorizer
    about every call, and the payments app;
  - with --envoy, and an envoy binary on PATH, Envoy sidecars from the bootstraps.

Ctrl-C stops everything.`,
		Example: `  meshguard up --config examples/quickstart/
  curl localhost:8000/catalog`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.configDir, "config", "examples/quickstart", "directory with mesh.yaml and authz.yaml")
	cmd.Flags().StringVar(&o.runDir, "run-dir", "", "state and generated files (default: DIR/.meshguard)")
	cmd.Flags().BoolVar(&o.envoy, "envoy", false, "also start Envoy sidecars (needs envoy on PATH)")
	cmd.Flags().DurationVar(&o.rolloutInterval, "rollout-interval", 5*time.Second, "how often rollout gates are judged")
	return cmd
}

func runUp(ctx context.Context, out io.Writer, o upOptions) error {
	if o.runDir == "" {
		o.runDir = filepath.Join(o.configDir, ".meshguard")
	}
	for _, d := range []string{"bootstrap", "svid", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.runDir, d), 0o755); err != nil {
			return err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(o.runDir, "logs", "meshguard.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))
	meshPath := filepath.Join(o.configDir, "mesh.yaml")

	// Shared state: a Redis of the quickstart's own, when one is installed.
	var children []*exec.Cmd
	defer func() { stopChildren(children) }()
	shared, err := startSharedState(ctx, o, log, &children)
	if err != nil {
		return err
	}
	defer shared.stop()

	// Authorizer.
	acfg, err := extauthz.LoadConfig(filepath.Join(o.configDir, "authz.yaml"))
	if err != nil {
		return err
	}
	acfg.DecisionLog.Path = filepath.Join(o.runDir, "logs", "decisions.jsonl")
	shared.configureAuthz(acfg)
	authz, err := extauthz.NewServer(ctx, acfg, log)
	if err != nil {
		return err
	}
	log.Info("garbage collector", "setting", gctune.Apply(gctune.AuthzPercent))
	if err := authz.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(10*time.Second, authz.Stop)

	// Control plane.
	caDir := filepath.Join(o.runDir, "ca")
	// The quickstart's sidecars run on this host as this user: their keys
	// go to loopback peers (the one place meshguard allows it).
	cp, err := controlplane.New(controlplane.Config{MeshPath: meshPath, AdminListen: upCPAdmin, CADir: caDir,
		InsecureLoopbackSecrets: true,
		RolloutDir:              filepath.Join(o.runDir, "rollouts"), AuthzAdmin: []string{authz.AdminAddr()}, RolloutInterval: o.rolloutInterval}, log)
	if err != nil {
		return err
	}
	if err := cp.Start(ctx); err != nil {
		return err
	}
	defer stopWithin(10*time.Second, cp.Stop)
	mesh := cp.Builder.Mesh()

	// Bootstraps and SVID files.
	ca, err := devca.LoadOrCreate(caDir, spiffeid.RequireTrustDomainFromString(mesh.Spec.TrustDomain))
	if err != nil {
		return err
	}
	type proc struct{ name, bootstrap string }
	var proxyless, sidecars []proc
	for i := range mesh.Spec.Services {
		svc := &mesh.Spec.Services[i]
		for _, w := range svc.Workloads {
			if w.Proxyless {
				p, err := writeGRPCBootstrap(o.runDir, mesh, ca, svc, w.Name)
				if err != nil {
					return err
				}
				proxyless = append(proxyless, proc{w.Name, p})
				continue
			}
			b, err := bootstrap.Envoy(mesh, w.Name)
			if err != nil {
				return err
			}
			y, err := toYAML(b)
			if err != nil {
				return err
			}
			p := filepath.Join(o.runDir, "bootstrap", w.Name+".envoy.yaml")
			if err := os.WriteFile(p, y, 0o644); err != nil {
				return err
			}
			sidecars = append(sidecars, proc{w.Name, p})
		}
	}

	// Demo workloads, each its own process (gRPC reads one xDS bootstrap per process).
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(name string, env []string, bin string, args ...string) error {
		logf, err := os.Create(filepath.Join(o.runDir, "logs", name+".log"))
		if err != nil {
			return err
		}
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), env...)
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s: %w", name, err)
		}
		children = append(children, c)
		return nil
	}
	for _, p := range proxyless {
		if err := start(p.name, []string{"GRPC_XDS_BOOTSTRAP=" + p.bootstrap}, self, "demo", "workload", "--name", p.name,
			"--mesh", meshPath, "--authz", authz.GRPCAddr(), "--control-plane", cp.AdminAddr()); err != nil {
			return err
		}
	}
	for _, p := range sidecars {
		if err := start(p.name+"-app", nil, self, "demo", "workload", "--name", p.name, "--mesh", meshPath); err != nil {
			return err
		}
	}
	envoyNote := "not started (run with --envoy; needs an envoy binary on PATH)"
	if o.envoy {
		envoyBin, err := exec.LookPath("envoy")
		if err != nil {
			envoyNote = "not started: no envoy binary on PATH"
		} else {
			for i, p := range sidecars {
				if err := start(p.name+"-envoy", nil, envoyBin, "-c", p.bootstrap, "--base-id", strconv.Itoa(100+i),
					"--log-path", filepath.Join(o.runDir, "logs", p.name+".envoy.log")); err != nil {
					return err
				}
			}
			envoyNote = "started for " + strconv.Itoa(len(sidecars)) + " sidecar(s)"
		}
	}
	ready := waitHTTP(ctx, "http://"+upFrontendUI+"/healthz", 20*time.Second)

	fmt.Fprintf(out, `meshguard is up (mesh %q, trust domain %s)

  authorizer      ext_authz gRPC %s   HTTP %s   admin http://%s/v1/status
  control plane   ADS %s   admin http://%s/v1/proxies   (meshguard status)
  dev CA          %s (reused on the next start)
  bootstraps      %s
  logs            %s (decisions: %s)
  frontend        http://%s  %s
  Envoy sidecars  %s
                  attach one yourself: envoy -c %s
  shared state    %s

Try:
  curl -s localhost:8000/catalog                    # anonymous: allowed (public catalog)
  curl -s localhost:8000/orders/42                  # anonymous: 403
  curl -s localhost:8000/orders/42 -H "authorization: Bearer $(./bin/meshguard demo token --sub alice)"
  curl -s -X POST localhost:8000/orders -H "authorization: Bearer $(./bin/meshguard demo token --sub sam --roles staff)"
  ./bin/meshguard status
  ./bin/meshguard rollout status

Ctrl-C stops everything.
`, mesh.Metadata.Name, mesh.Spec.TrustDomain, authz.GRPCAddr(), authz.HTTPAddr(), authz.AdminAddr(), cp.Addr(), cp.AdminAddr(),
		caDir, filepath.Join(o.runDir, "bootstrap"), filepath.Join(o.runDir, "logs"), acfg.DecisionLog.Path,
		upFrontendUI, map[bool]string{true: "(ready)", false: "(not answering yet; see its log)"}[ready],
		envoyNote, firstOr(sidecars, func(p proc) string { return p.bootstrap }), shared.note)

	// Keep proxyless SVID files fresh (gRPC's file_watcher re-reads them).
	t := time.NewTicker(proxylessTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "\nstopping…")
			return nil
		case <-t.C:
			for i := range mesh.Spec.Services {
				svc := &mesh.Spec.Services[i]
				for _, w := range svc.Workloads {
					if w.Proxyless {
						if _, err := writeGRPCBootstrap(o.runDir, mesh, ca, svc, w.Name); err != nil {
							log.Error("SVID refresh failed", "workload", w.Name, "err", err)
						}
					}
				}
			}
		}
	}
}

func firstOr[T any](xs []T, f func(T) string) string {
	if len(xs) == 0 {
		return "(no sidecar workloads)"
	}
	return f(xs[0])
}

// writeGRPCBootstrap issues the workload's SVID files and writes its gRPC
// xDS bootstrap; it returns the bootstrap's path.
func writeGRPCBootstrap(runDir string, m *model.Mesh, ca *devca.CA, svc *model.Service, name string) (string, error) {
	s, err := ca.Issue(spiffeid.RequireFromString(m.SPIFFEID(svc)), proxylessTTL)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(runDir, "svid", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	files := bootstrap.GRPCFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), CA: filepath.Join(dir, "bundle.pem")}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{files.Key, s.KeyPEM, 0o600}, {files.Cert, s.CertPEM, 0o644}, {files.CA, ca.BundlePEM(), 0o644}} {
		if err := writeAtomic(f.path, f.data, f.mode); err != nil {
			return "", err
		}
	}
	b, err := bootstrap.GRPC(m, name, files)
	if err != nil {
		return "", err
	}
	p := filepath.Join(runDir, "bootstrap", name+".grpc.json")
	return p, os.WriteFile(p, b, 0o644)
}

// writeAtomic replaces a file by rename, so watchers never read half of it.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func stopChildren(children []*exec.Cmd) {
	for _, c := range children {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, c := range children {
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.Wait() }()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, c := range children {
			_ = c.Process.Kill()
		}
	}
}

func stopWithin(d time.Duration, stop func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	stop(ctx)
}
