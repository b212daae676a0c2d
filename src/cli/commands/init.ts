// sd init: create the library directory, its database and this device.
import { initLibrary } from '../../vdfs/library.js';
import type { Command } from '../command.js';

export const initCommand: Command = {
  name: 'init',
  usage: `Usage: sd init [--name DEVICE]

Creates the library directory (default ~/.local/share/sd; --library DIR or SD_LIBRARY)
with its SQLite database and this device's identity. Running it again is harmless.
  --name DEVICE   this device's name (default: the host name); its slug names it in
                  sd:// paths and under /sd (lowercase, non-alphanumerics become '-')`,
  options: { name: { type: 'string' } },
  run(ctx) {
    const { library, created } = initLibrary(ctx.libraryDir, ctx.values.name as string | undefined);
    try {
      const { device } = library;
      ctx.out.result({ library: library.dir, created, device: { id: device.id, name: device.name, slug: device.slug } }, () =>
        created
          ? [`Created library ${library.dir}`, `This device: ${device.name} (sd://${device.slug}/), id ${device.id}`, `Next: sd location add PATH`]
          : [`Library ${library.dir} exists already; this device is ${device.name} (sd://${device.slug}/)`],
      );
    } finally {
      library.close();
    }
  },
};
