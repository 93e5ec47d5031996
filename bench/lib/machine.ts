import { cpus, freemem, loadavg, release, totalmem, type } from 'node:os'

export interface Machine {
  cpuModel: string
  cpuCount: number
  memoryGiB: number
  freeMemoryGiB: number
  os: string
  node: string
  postgres: string
  postgresSource: string
  loadAverageAtStart: number[]
}

export function machine(postgres: { version: string; source: string }): Machine {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
    postgres: postgres.version,
    postgresSource: postgres.source,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  }
}
