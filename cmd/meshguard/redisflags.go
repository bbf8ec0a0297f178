package main

import (
	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/internal/redisclient"
)

// redisFlags binds the --redis-* flags to c (the YAML block's keys, as flags).
func redisFlags(cmd *cobra.Command, c *redisclient.Config) {
	f := cmd.Flags()
	f.StringVar(&c.Mode, "redis-mode", redisclient.ModeStandalone, "standalone, sentinel or cluster")
	f.StringSliceVar(&c.Addrs, "redis-addr", []string{"127.0.0.1:6379"}, "Redis (standalone), Sentinels (sentinel) or cluster nodes, host:port; repeat or comma-separate")
	f.StringVar(&c.MasterName, "redis-master", "", "the Sentinel master's name (sentinel mode)")
	f.StringVar(&c.Username, "redis-username", "", "ACL user")
	f.StringVar(&c.PasswordFile, "redis-password-file", "", "file holding the password (never a flag: flags show in ps)")
	f.StringVar(&c.SentinelPasswordFile, "redis-sentinel-password-file", "", "file holding the Sentinels' password")
	f.IntVar(&c.DB, "redis-db", 0, "database number (not in cluster mode)")
	f.IntVar(&c.PoolSize, "redis-pool-size", 0, "connections per node (default 10 per CPU)")
	f.StringVar(&c.KeyPrefix, "redis-key-prefix", redisclient.DefaultKeyPrefix, "prefix of every key written")
	tlsCA := f.String("redis-tls-ca", "", "TLS to Redis, verified with this CA bundle (PEM)")
	tlsCert := f.String("redis-tls-cert", "", "TLS client certificate (PEM)")
	tlsKey := f.String("redis-tls-key", "", "TLS client key (PEM)")
	tlsOn := f.Bool("redis-tls", false, "TLS to Redis, verified with the system roots")
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if *tlsOn || *tlsCA != "" || *tlsCert != "" {
			c.TLS = &redisclient.TLS{CAFile: *tlsCA, CertFile: *tlsCert, KeyFile: *tlsKey}
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}
