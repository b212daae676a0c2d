// Every `sd` command, in the order `sd --help` lists them. Each module is imported only
// when its command runs, so `sd ls` does not pay for loading FUSE or the job machinery.
import type { CommandEntry } from '../command.js';

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'init', summary: 'create the library and this device', load: async () => (await import('./init.js')).initCommand },
  { name: 'location', summary: 'add, list or remove the folders this device indexes', load: async () => (await import('./location.js')).locationCommand },
  { name: 'index', summary: 'index locations now (all, or the named ones)', load: async () => (await import('./index-cmd.js')).indexCommand },
  { name: 'watch', summary: 'keep the index true as files change, until Ctrl-C', load: async () => (await import('./watch.js')).watchCommand },
  { name: 'mount', summary: 'run this device: watch its locations and mount the tree (default /sd)', load: async () => (await import('./mount.js')).mountCommand },
  { name: 'umount', summary: 'unmount a tree mounted by sd mount (default /sd)', load: async () => (await import('./mount.js')).umountCommand },
  { name: 'ls', summary: 'list a folder of the virtual tree (sd://device/location/path)', load: async () => (await import('./browse.js')).lsCommand },
  { name: 'stat', summary: 'show everything the library knows about one entry', load: async () => (await import('./browse.js')).statCommand },
  { name: 'cat', summary: "print a file's bytes", load: async () => (await import('./browse.js')).catCommand },
  { name: 'search', summary: 'find files by name, by what they hold, in plain language or with filters', load: async () => (await import('./find.js')).searchCommand },
  { name: 'do', summary: 'do what a sentence says: copy, move, delete or tag the files it names (previewed first)', load: async () => (await import('./do.js')).doCommand },
  { name: 'dupes', summary: 'list content held by more than one file, with wasted bytes', load: async () => (await import('./find.js')).dupesCommand },
  { name: 'cp', summary: 'copy files or folders (previewed, journaled, resumable, verified)', load: async () => (await import('./cp-mv-rm.js')).cpCommand },
  { name: 'mv', summary: 'move files or folders (a rename on one file system, else copy + verify + delete)', load: async () => (await import('./cp-mv-rm.js')).mvCommand },
  { name: 'rm', summary: "delete files or folders (to the location's .sd-trash unless --permanent)", load: async () => (await import('./cp-mv-rm.js')).rmCommand },
  { name: 'mkdir', summary: 'create a folder', load: async () => (await import('./cp-mv-rm.js')).mkdirCommand },
  { name: 'tag', summary: 'add, remove or list tags (shared with every paired device)', load: async () => (await import('./tag.js')).tagCommand },
  { name: 'meta', summary: 'set, remove or list metadata keys of files (shared with every paired device)', load: async () => (await import('./meta.js')).metaCommand },
  { name: 'guardian', summary: 'copies of every file across devices, policies, and what is at risk', load: async () => (await import('./guardian.js')).guardianCommand },
  { name: 'jobs', summary: 'list, show, pause, resume or cancel jobs (copies, moves, deletes)', load: async () => (await import('./jobs.js')).jobsCommand },
  { name: 'pair', summary: 'pair with another device using 12 one-time words (sd pair join WORDS on the other)', load: async () => (await import('./pair.js')).pairCommand },
  { name: 'devices', summary: 'list paired devices (online, last seen, round-trip time) or revoke one', load: async () => (await import('./devices.js')).devicesCommand },
  { name: 'testnet', summary: 'run a local DHT and print its bootstrap address, until Ctrl-C', load: async () => (await import('./testnet.js')).testnetCommand },
];
