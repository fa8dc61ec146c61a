import type { ControllerProcess } from '../../controller/testing/controller-process.ts'

/**
 * Waits until the controller is ready (`/readyz`: every namespace in scope listed) and is the leader
 * (`kube_locks_controller_leader` 1), failing with its output at the deadline or when it exits. A fault
 * test "with the controller" calls this before the faults and again after, so that it cannot pass with a
 * controller that never ran or died on the way.
 */
export async function expectControllerLeading(
  controller: ControllerProcess,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  let last = 'no answer yet'
  for (;;) {
    if (!controller.alive) throw new Error(`${controller.name} is not running\n${controller.output()}`)
    try {
      const ready = await controller.get('/readyz')
      const leader = await controller.metric('kube_locks_controller_leader')
      if (ready.status === 200 && leader === 1) return
      last = `/readyz ${ready.status} ${ready.text.trim()}, kube_locks_controller_leader ${leader}`
    } catch (error) {
      last = String(error)
    }
    if (performance.now() >= deadline) {
      throw new Error(
        `${controller.name} was not the ready leader within ${timeoutMs} ms (${last})\n${controller.output()}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
