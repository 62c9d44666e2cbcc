// The launcher behind `npm start`: its demo catalog is reusable by tests and benchmarks.
export { demoCatalog, drawProductImage } from './demo/demo-catalog.js';
export type { DemoCatalogOptions, DemoProduct } from './demo/demo-catalog.js';
export { encodePng } from './demo/png.js';
