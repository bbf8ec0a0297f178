package extauthz

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/internal/contract"
)

// Destination gives the route settings of requests to one workload, for
// proxies meshguard's control plane does not configure (Istio's CUSTOM
// authorization): they send no meshguard.* context extensions, and the
// workload is known by the SPIFFE ID of its own certificate, which Envoy
// reports as the destination principal. A client cannot choose it.
type Destination struct {
	// SPIFFEID is the destination workload's identity.
	SPIFFEID string `yaml:"spiffe_id"`
	// Service names the workload's service (Service::"<service>").
	Service string `yaml:"service"`
	// Policy is the policy set (default: the service name).
	Policy string `yaml:"policy"`
	// Mode is enforce (default) or shadow; Shadow a candidate set.
	Mode   string `yaml:"mode"`
	Shadow string `yaml:"shadow"`
	// Route names the route in logs and metrics (default: the service).
	Route string `yaml:"route"`
}

// extensions are the context extensions meshguard's control plane would
// have sent for d.
func (d Destination) extensions() map[string]string {
	ext := map[string]string{contract.ExtService: d.Service, contract.ExtPolicy: d.Policy, contract.ExtRoute: d.Route}
	if d.Mode != "" {
		ext[contract.ExtMode] = d.Mode
	}
	if d.Shadow != "" {
		ext[contract.ExtShadow] = d.Shadow
	}
	return ext
}

// destinationTable maps destination principals to route settings.
type destinationTable map[string]map[string]string

func newDestinationTable(ds []Destination) destinationTable {
	if len(ds) == 0 {
		return nil
	}
	t := destinationTable{}
	for _, d := range ds {
		if d.Policy == "" {
			d.Policy = d.Service
		}
		if d.Route == "" {
			d.Route = d.Service
		}
		t[d.SPIFFEID] = d.extensions()
	}
	return t
}

// routeExtensions are the request's route settings: its context
// extensions when the control plane sent any, else its destination's.
func (t destinationTable) routeExtensions(a *Attributes) map[string]string {
	if len(a.Extensions) > 0 || t == nil {
		return a.Extensions
	}
	if ext, ok := t[a.DestinationPrincipal]; ok {
		return ext
	}
	return a.Extensions
}

func validateDestinations(ds []Destination) error {
	var errs []error
	seen := map[string]bool{}
	for i, d := range ds {
		p := fmt.Sprintf("[%d]", i)
		if _, err := spiffeid.FromString(d.SPIFFEID); err != nil {
			errs = append(errs, fmt.Errorf("%s.spiffe_id: %q: %w", p, d.SPIFFEID, err))
		} else if seen[d.SPIFFEID] {
			errs = append(errs, fmt.Errorf("%s.spiffe_id: %q twice", p, d.SPIFFEID))
		}
		seen[d.SPIFFEID] = true
		if d.Service == "" {
			errs = append(errs, fmt.Errorf("%s.service: required", p))
		}
		for field, set := range map[string]string{"policy": d.Policy, "shadow": d.Shadow} {
			if set != "" && !contract.ValidSetName(set) {
				errs = append(errs, fmt.Errorf("%s.%s: %q is not a policy set name", p, field, set))
			}
		}
		if d.Mode != "" && d.Mode != ModeEnforce && d.Mode != ModeShadow {
			errs = append(errs, fmt.Errorf("%s.mode: %q: want enforce or shadow", p, d.Mode))
		}
	}
	return errors.Join(errs...)
}
