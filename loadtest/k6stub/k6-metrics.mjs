// Stand-in for k6/metrics: metrics keep their samples for inspection.
class Metric {
  constructor(name) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid metric name ${name}`);
    this.name = name;
    this.samples = [];
  }
  add(value, tags) {
    if (typeof value === 'boolean') value = value ? 1 : 0;
    if (typeof value !== 'number' || Number.isNaN(value)) throw new Error(`${this.name}: add(${value}) is not a number`);
    this.samples.push({ value, tags });
  }
}

export class Counter extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}
export class Gauge extends Metric {}
export default { Counter, Rate, Trend, Gauge };
