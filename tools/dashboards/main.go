// Command dashboards writes meshguard's Grafana dashboards
// (internal/dashboards) as JSON files into a directory: make generate
// runs it for charts/meshguard/dashboards.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/meshguard/meshguard/internal/dashboards"
)

func main() {
	out := flag.String("out", "charts/meshguard/dashboards", "directory to write the dashboards to")
	flag.Parse()
	all, err := dashboards.All()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, d := range all {
		data, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*out, name), append(data, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
