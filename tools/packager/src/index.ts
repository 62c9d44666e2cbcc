// @keyless/packager: packs a built service into a self-contained folder to deploy.
export { PackageError, packageService } from './package-service.js';
export type { PackageServiceOptions, ServicePackage } from './package-service.js';
