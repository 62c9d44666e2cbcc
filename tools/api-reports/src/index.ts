export { libraryEntryPoints, repoRoot, runApiReports, updateCommand } from './api-reports.js';
export type { ApiEntryPoint, ApiReportOptions, ApiReportResult } from './api-reports.js';
