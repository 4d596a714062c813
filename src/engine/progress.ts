// Progress of work made of steps (an explanation: augmentations × classes × layers; a job: images), each
// of which may report its own (done, total) as it goes (the forward runner, after each batch), as one
// monotone count of runs done out of an estimated total.

export type ProgressFn = (done: number, total: number) => void;

/**
 * Folds the progress reports of `steps` steps into one count. Within a step the reports come from one or
 * more calls, each counting up to its own total (a report with done = total ends a call; the next report
 * starts another). A step that reports nothing counts as one run. The total is exact once every step has
 * begun; before that, steps not yet begun are estimated at the size of the last one seen. `done` never
 * decreases, and after the last `stepDone()` done = total.
 */
export class StepProgress {
  private finishedSteps = 0;
  /** runs of the finished steps */
  private finishedRuns = 0;
  /** the current step: runs of its finished calls, and its current call's (done, total) */
  private base = 0;
  private done = 0;
  private total = 0;
  private lastStepRuns: number | undefined;
  private sent: [number, number] = [-1, -1];

  constructor(private readonly steps: number, private readonly report: ProgressFn) {}

  /** A report from within the current step. */
  readonly runner: ProgressFn = (done, total) => {
    if (this.total > 0 && this.done >= this.total) this.base += this.total; // the previous call ended
    this.done = Math.min(done, total);
    this.total = total;
    this.emit();
  };

  /** The current step is finished. */
  readonly stepDone = (): void => {
    const runs = this.total > 0 ? this.base + this.total : 1;
    this.finishedRuns += runs;
    this.finishedSteps = Math.min(this.steps, this.finishedSteps + 1);
    this.lastStepRuns = runs;
    this.base = this.done = this.total = 0;
    this.emit();
  };

  private emit(): void {
    const started = this.total > 0;
    const currentDone = started ? this.base + this.done : 0;
    const remaining = this.steps - this.finishedSteps;
    const estimate = this.lastStepRuns ?? (started ? this.base + this.total : 1);
    const currentTotal = remaining > 0 ? (started ? this.base + this.total : estimate) : 0;
    const done = this.finishedRuns + currentDone;
    const total = this.finishedRuns + currentTotal + Math.max(0, remaining - 1) * estimate;
    if (done < this.sent[0] || (done === this.sent[0] && total === this.sent[1])) return;
    this.sent = [done, Math.max(total, done)];
    this.report(this.sent[0], this.sent[1]);
  }
}
