// Compiles the built-in chain (migrations/*.ts) to dist/migrations and writes
// checksums.json: sha256 of each TypeScript source, so a migration's checksum
// does not change when the compiler or its options do.
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'

const src = new URL('../migrations/', import.meta.url)
// Optional argument: the build's output folder (tests build into a folder of their own).
const out = process.argv[2]
  ? new URL('migrations/', pathToFileURL(`${process.argv[2].replace(/\/$/, '')}/`))
  : new URL('../dist/migrations/', import.meta.url)
mkdirSync(out, { recursive: true })
const checksums = {}
for (const file of readdirSync(src)
  .filter((f) => f.endsWith('.ts'))
  .sort()) {
  const source = readFileSync(new URL(file, src), 'utf8')
  const name = file.slice(0, -3)
  checksums[name] =
    `sha256:${createHash('sha256').update(source.replace(/\r\n/g, '\n')).digest('hex')}`
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2023,
      verbatimModuleSyntax: true,
    },
    fileName: file,
  })
  writeFileSync(new URL(`${name}.js`, out), outputText)
}
copyFileSync(new URL('schema.snapshot.json', src), new URL('schema.snapshot.json', out))
writeFileSync(new URL('checksums.json', out), `${JSON.stringify(checksums, null, 2)}\n`)
console.log(`built ${Object.keys(checksums).length} migrations into ${out.pathname}`)
