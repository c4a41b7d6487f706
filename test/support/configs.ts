// The smallest valid agent configuration, as a plain tree: the config tests and the config fuzzer
// both start from it and change one thing (or many) in a copy.
export type ConfigTree = Record<string, unknown>;

export function minimalConfig(): ConfigTree {
  return {
    scope: 'demo',
    name: 'n1',
    restapi: { listen: '127.0.0.1:8008' },
    raft: { self_addr: '127.0.0.1:2222', partner_addrs: ['127.0.0.1:2223', '127.0.0.1:2224'], data_dir: 'data/n1/raft' },
    postgresql: {
      listen: '127.0.0.1:5432',
      data_dir: 'data/n1/pg',
      authentication: { superuser: { username: 'postgres', password: 's' }, replication: { username: 'rep', password: 'r' } },
    },
  };
}
