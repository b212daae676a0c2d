// Kinds of files by their extension, and the SQL that gives every entry its extension and
// kind as generated columns (migration 16: entries.ext, entries.kind_class, each with an
// index by time). The lists are part of the schema: a library made with them keeps them,
// so a change here needs a migration that redefines the columns.

/** File kinds a search knows (kind:image, "photos"...), by extension. */
export const KIND_EXTENSIONS: Record<string, readonly string[]> = {
  image: ['jpg', 'jpeg', 'png', 'gif', 'webp', 'heic', 'heif', 'bmp', 'tif', 'tiff', 'svg', 'avif', 'raw', 'cr2', 'cr3', 'nef', 'arw', 'dng', 'raf', 'orf', 'rw2'],
  video: ['mp4', 'mkv', 'mov', 'avi', 'webm', 'm4v', 'wmv', 'flv', 'mpg', 'mpeg', 'm2ts', 'mts', '3gp'],
  audio: ['mp3', 'flac', 'wav', 'ogg', 'm4a', 'aac', 'opus', 'wma', 'aiff'],
  document: ['pdf', 'doc', 'docx', 'odt', 'txt', 'md', 'rtf', 'xls', 'xlsx', 'ods', 'ppt', 'pptx', 'odp', 'csv', 'epub', 'pages', 'key', 'numbers'],
  archive: ['zip', 'tar', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar', 'zst', 'iso', 'dmg'],
  code: ['js', 'mjs', 'ts', 'tsx', 'jsx', 'py', 'rs', 'go', 'c', 'h', 'cpp', 'hpp', 'java', 'kt', 'rb', 'sh', 'json', 'yaml', 'yml', 'toml', 'html', 'css', 'sql'],
};

/** SQL of a file's extension, lower case, from its name (after the last dot; NULL without one or for a folder). */
export const EXT_SQL = `CASE WHEN kind = 'file' AND instr(name, '.') > 0 THEN lower(replace(name, rtrim(name, replace(name, '.', '')), '')) END`;

/**
 * SQL of a file's kind from its extension column (NULL when no kind has it). A search in
 * one string per kind: an IN list here was built into a table on every insert (measured:
 * the two columns' indexes cost 7 µs an insert so, 2 µs this way).
 */
export function kindClassSql(): string {
  const whens = Object.entries(KIND_EXTENSIONS).map(([kind, exts]) => `WHEN instr(',${exts.join(',')},', ',' || ext || ',') > 0 THEN '${kind}'`);
  return `CASE WHEN ext IS NULL OR ext = '' OR instr(ext, ',') > 0 THEN NULL ${whens.join(' ')} END`;
}

const DOCUMENT_MIMES = new Set([
  'application/pdf', 'application/rtf', 'application/epub+zip', 'application/msword', 'application/vnd.ms-excel', 'application/vnd.ms-powerpoint',
  'application/x-cfb', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text', 'application/vnd.oasis.opendocument.spreadsheet', 'application/vnd.oasis.opendocument.presentation',
]);
const ARCHIVE_MIMES = new Set([
  'application/zip', 'application/gzip', 'application/x-tar', 'application/x-7z-compressed', 'application/x-rar-compressed', 'application/vnd.rar',
  'application/x-bzip2', 'application/x-xz', 'application/zstd', 'application/x-iso9660-image', 'application/x-apple-diskimage',
]);

/** The kind a file's bytes say (file-type's MIME type), one of KIND_EXTENSIONS' keys; undefined when they say none of them. */
export function kindOfMime(mime: string | undefined): string | undefined {
  if (!mime) return undefined;
  const top = mime.slice(0, mime.indexOf('/'));
  if (top === 'image' || top === 'video' || top === 'audio') return top;
  if (DOCUMENT_MIMES.has(mime)) return 'document';
  if (ARCHIVE_MIMES.has(mime)) return 'archive';
  return undefined;
}
