package identity

import (
	"context"
	"errors"
)

// TLSConfig is the configuration section for serving (or dialing) with a
// SPIFFE identity: where the SVID comes from, and which peers are allowed.
type TLSConfig struct {
	// WorkloadAPI is the SPIFFE Workload API address (a SPIRE agent), e.g.
	// unix:///run/spire/sockets/agent.sock. Or the three files below.
	WorkloadAPI string `yaml:"workload_api"`
	CertFile    string `yaml:"cert_file"`
	KeyFile     string `yaml:"key_file"`
	BundleFile  string `yaml:"bundle_file"`
	// Which peers may connect.
	Policy `yaml:",inline"`
}

// Validate checks the section.
func (c *TLSConfig) Validate() error {
	files := c.CertFile != "" || c.KeyFile != "" || c.BundleFile != ""
	switch {
	case c.WorkloadAPI != "" && files:
		return errors.New("set workload_api or cert_file/key_file/bundle_file, not both")
	case c.WorkloadAPI == "" && (c.CertFile == "" || c.KeyFile == "" || c.BundleFile == ""):
		return errors.New("workload_api, or all of cert_file, key_file and bundle_file, are required")
	}
	return c.Policy.Validate()
}

// Open returns the configured SVID source; close releases it.
func (c *TLSConfig) Open(ctx context.Context) (src Source, closeFn func(), err error) {
	if c.WorkloadAPI != "" {
		s, err := WorkloadAPI(ctx, c.WorkloadAPI)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { _ = s.Close() }, nil
	}
	s, err := NewFileSource(c.CertFile, c.KeyFile, c.BundleFile)
	if err != nil {
		return nil, nil, err
	}
	return s, func() {}, nil
}
