/** Command-line flags of `npm run bench -- [flags]`. */
export interface BenchArgs {
  quick: boolean
  /** Side-by-side runs (service and bare process alternate within each). */
  runs: number
  /** Trials for the migration-engine, 1000-vs-3 and replica phases. */
  trials: number
  /** Seconds of load per throughput measurement. */
  loadSeconds: number
  connections: number
  /** LOG_LEVEL of the service (the shipped default is info). */
  logLevel: string
  /** Phases to run (all by default). */
  only: Set<Phase>
  /** Use the existing dist/ instead of a private build of src/. */
  useDist: boolean
  /** Measure this build folder (server.js, migrate/, migrations/) instead: A/B a candidate fix. */
  buildDir: string | null
  /** Write CPU profiles of the measured service processes to bench/results/profiles. */
  profile: boolean
  /**
   * Node 22.1+: start the service and the bare process with a compile cache each, filled
   * before the first measurement (the service's by the script the image runs).
   */
  compileCache: boolean
}

export const PHASES = [
  'side-by-side',
  'migrations',
  'boot-scale',
  'replicas',
  'instructions',
] as const
export type Phase = (typeof PHASES)[number]
/** What a run measures unless `--only` says otherwise: `instructions` needs valgrind and ~10 min. */
const DEFAULT_PHASES: Phase[] = ['side-by-side', 'migrations', 'boot-scale', 'replicas']

const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--trials N] [--load-seconds S]
       [--connections N] [--log-level info|warn|...] [--only ${PHASES.join(',')}]
       [--use-dist | --build-dir DIR] [--profile] [--compile-cache]`

export function parseArgs(argv: string[]): BenchArgs {
  const quick = argv.includes('--quick')
  const args: BenchArgs = {
    quick,
    runs: quick ? 3 : 7,
    trials: quick ? 3 : 5,
    loadSeconds: quick ? 2 : 4,
    connections: 10,
    logLevel: 'info',
    only: new Set(DEFAULT_PHASES),
    useDist: false,
    buildDir: null,
    profile: false,
    compileCache: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`)
      return v
    }
    const positive = () => {
      const n = Number(value())
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`)
      return n
    }
    switch (flag) {
      case '--quick':
        break
      case '--runs':
        args.runs = positive()
        break
      case '--trials':
        args.trials = positive()
        break
      case '--load-seconds':
        args.loadSeconds = positive()
        break
      case '--connections':
        args.connections = positive()
        break
      case '--log-level':
        args.logLevel = value()
        break
      case '--only': {
        const wanted = value().split(',')
        for (const p of wanted) {
          if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p}`)
        }
        args.only = new Set(wanted as Phase[])
        break
      }
      case '--use-dist':
        args.useDist = true
        break
      case '--build-dir':
        args.buildDir = value()
        break
      case '--profile':
        args.profile = true
        break
      case '--compile-cache':
        args.compileCache = true
        break
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`)
        process.exit(0)
        break
      default:
        throw new Error(`unknown flag ${flag}\n${USAGE}`)
    }
  }
  return args
}
