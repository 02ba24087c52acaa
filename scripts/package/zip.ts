/**
 * A small zip writer (PKWARE APPNOTE 6.3.x, sections 4.3 and 4.4): one deflated entry per file, Unix modes
 * in the external attributes (as azd's `rzip` and Core Tools' `ZipHelper` write them), no directory entries,
 * no zip64 (a function app package stays far below 65,535 files and 4 GiB).
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipInput {
  /** Path inside the archive, with `/`. */
  readonly name: string;
  readonly data: Buffer;
  /** Unix permission bits, e.g. 0o644. */
  readonly mode: number;
  readonly mtime: Date;
}

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
/** 2.0: deflate. */
const VERSION = 20;
/** "Made by" high byte 3: Unix, so the external attributes carry the file mode. */
const MADE_BY_UNIX = 3 << 8;
/** General purpose flag bit 11: the name is UTF-8. */
const UTF8_NAME = 0x0800;
const DEFLATE = 8;
const S_IFREG = 0o100000;

/** MS-DOS date and time (APPNOTE 4.4.6), from the UTC fields; DOS dates start in 1980. */
function dosDateTime(d: Date): { date: number; time: number } {
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

export function zip(entries: readonly ZipInput[]): Buffer {
  if (entries.length > 0xffff) throw new Error(`${entries.length} files need zip64, which this writer does not write`);
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const compressed = deflateRawSync(e.data);
    const crc = crc32(e.data);
    const { date, time } = dosDateTime(e.mtime);
    const flags = /[^\x20-\x7e]/.test(e.name) ? UTF8_NAME : 0;
    if (offset > 0xffffffff || e.data.length > 0xffffffff)
      throw new Error(`${e.name}: the archive needs zip64, which this writer does not write`);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(LOCAL_HEADER, 0);
    local.writeUInt16LE(VERSION, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(DEFLATE, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    parts.push(local, name, compressed);

    const header = Buffer.alloc(46);
    header.writeUInt32LE(CENTRAL_HEADER, 0);
    header.writeUInt16LE(MADE_BY_UNIX | VERSION, 4);
    header.writeUInt16LE(VERSION, 6);
    header.writeUInt16LE(flags, 8);
    header.writeUInt16LE(DEFLATE, 10);
    header.writeUInt16LE(time, 12);
    header.writeUInt16LE(date, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(compressed.length, 20);
    header.writeUInt32LE(e.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    // extra field length, comment length, disk number start, internal attributes: 0
    header.writeUInt32LE(((S_IFREG | (e.mode & 0o777)) << 16) >>> 0, 38);
    header.writeUInt32LE(offset, 42);
    central.push(header, name);

    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(central);
  if (offset > 0xffffffff) throw new Error('the archive needs zip64, which this writer does not write');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
  // number of this disk, disk with the central directory: 0
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
