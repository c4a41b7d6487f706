// The agent's configuration after parsing, defaults, environment overrides and validation: the
// shape of patroni.yml (reference §3.1), with times in seconds as Patroni writes them. Everything
// the rest of the agent reads comes from here; nothing else looks at YAML or the environment.

/** Where a server listens and what it tells others to connect to. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface Credentials {
  readonly username: string;
  /** '' when none is configured (peer/trust authentication). */
  readonly password: string;
}

export interface Tags {
  readonly nofailover: boolean;
  /** Higher wins among equal positions; <= 0 acts as nofailover (Patroni 3.2+). Default 1. */
  readonly failover_priority: number;
  readonly noloadbalance: boolean;
  readonly clonefrom: boolean;
  readonly nosync: boolean;
  readonly replicatefrom: string | null;
  /** Every tag as written, user tags included, for the member key and tag_ health filters. */
  readonly all: Readonly<Record<string, unknown>>;
}

/** The cluster-wide settings that bootstrap.dcs seeds into the `config` key (reference §3.2). */
export interface DynamicConfig {
  readonly ttl: number;
  readonly loop_wait: number;
  readonly retry_timeout: number;
  readonly maximum_lag_on_failover: number;
  readonly maximum_lag_on_syncnode: number;
  readonly primary_start_timeout: number;
  readonly primary_stop_timeout: number;
  readonly synchronous_mode: boolean | 'quorum';
  readonly synchronous_mode_strict: boolean;
  readonly synchronous_node_count: number;
  readonly failsafe_mode: boolean;
  readonly check_timeline: boolean;
  readonly member_slots_ttl: number;
  readonly max_timelines_history: number;
  readonly postgresql: {
    readonly use_slots: boolean;
    readonly use_pg_rewind: boolean;
    readonly parameters: Readonly<Record<string, string | number | boolean>>;
    readonly pg_hba: readonly string[];
  };
  /** Keys we do not interpret are kept, so they round-trip through the store. */
  readonly extra: Readonly<Record<string, unknown>>;
}

export type CallbackName = 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change';

export interface AgentConfig {
  readonly scope: string;
  /** Patroni's default '/service'; no trailing slash. */
  readonly namespace: string;
  readonly name: string;
  readonly restapi: {
    readonly listen: HostPort;
    readonly connect_address: HostPort;
    readonly authentication: Credentials | null;
    /** HTTPS when set (absolute paths). keyfile null: the key is in certfile. */
    readonly certfile: string | null;
    readonly keyfile: string | null;
    readonly keyfile_password: string | null;
    /** CA for client certificates (verify_client) and for calling peers over HTTPS. */
    readonly cafile: string | null;
    /** none; optional: a client certificate is required on mutating requests; required: on every request. */
    readonly verify_client: 'none' | 'optional' | 'required';
    /** Hosts, IPs or CIDR blocks allowed to call mutating endpoints; empty: anyone (subject to auth). */
    readonly allowlist: readonly string[];
    /** Also allow the members' own REST hosts (from their api_url). */
    readonly allowlist_include_members: boolean;
  };
  readonly raft: {
    /** This voter's address "host:port"; its peers know it by this. */
    readonly self_addr: HostPort;
    /** Where to listen, when it differs from self_addr (behind NAT); default self_addr. */
    readonly bind_addr: HostPort;
    readonly partner_addrs: readonly HostPort[];
    readonly data_dir: string;
    /** The cluster's shared secret: every request between members is signed with it. null: none (warned). */
    readonly password: string | null;
    /** Mutual TLS between members (certfile, keyfile, cafile); null: plain HTTP. */
    readonly tls: { readonly certfile: string; readonly keyfile: string; readonly cafile: string } | null;
  };
  readonly bootstrap: {
    /** Seeds the `config` key once, at bootstrap; defaults filled in. */
    readonly dcs: DynamicConfig;
    /** initdb options as given: switches ('data-checksums') and single-key maps ({encoding: 'UTF8'}). */
    readonly initdb: readonly (string | Readonly<Record<string, string>>)[];
    readonly pg_hba: readonly string[];
  };
  /**
   * null: this member is a witness (no `postgresql` section): it votes in Raft and never runs
   * PostgreSQL, so two database nodes and a witness make a three-member cluster.
   */
  readonly postgresql: {
    readonly listen: HostPort;
    readonly connect_address: HostPort;
    readonly data_dir: string;
    readonly bin_dir: string;
    readonly authentication: {
      readonly superuser: Credentials;
      readonly replication: Credentials;
      /** Defaults to the superuser when absent. */
      readonly rewind: Credentials;
    };
    readonly parameters: Readonly<Record<string, string | number | boolean>>;
    readonly pg_hba: readonly string[];
    /** null: take use_pg_rewind from the dynamic config. */
    readonly use_pg_rewind: boolean | null;
    readonly remove_data_directory_on_rewind_failure: boolean;
    readonly remove_data_directory_on_diverged_timelines: boolean;
    readonly create_replica_methods: readonly string[];
    readonly callbacks: Readonly<Partial<Record<CallbackName, string>>>;
    readonly pg_ctl_timeout: number;
    /** The OS user PostgreSQL and its tools run as when the agent runs as root. */
    readonly run_as: string;
    /** The pgpass file (0600) a replica's primary_conninfo names; null: `<name>.pgpass` beside data_dir. */
    readonly pgpass: string | null;
  } | null;
  readonly tags: Tags;
  readonly watchdog: {
    readonly mode: 'off' | 'automatic' | 'required';
    readonly device: string;
    readonly safety_margin: number;
  };
  readonly log: {
    readonly level: 'debug' | 'info' | 'warn' | 'error';
    /** auto (the default): plain on a terminal, one JSON object per line otherwise. */
    readonly type: 'plain' | 'json' | 'auto';
    readonly dir: string | null;
  };
}

/** The config of a member that runs PostgreSQL (not a witness). */
export type DatabaseAgentConfig = AgentConfig & { readonly postgresql: NonNullable<AgentConfig['postgresql']> };

/** Thrown for any bad configuration; the message names the key and the problem. */
export class ConfigError extends Error {
  readonly code = 'ERR_BAD_CONFIG';
  readonly key: string;
  constructor(key: string, problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}
