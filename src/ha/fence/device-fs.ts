// The file-system calls the watchdog's pure checks (watchdog.ts) are given, in the agent and in the
// fence process alike.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import type { DeviceFs } from './watchdog.ts';

export const deviceFs: DeviceFs = {
  stat: (path) => statSync(path),
  checkWritable: (path) => accessSync(path, constants.W_OK),
  read: (file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  },
};
