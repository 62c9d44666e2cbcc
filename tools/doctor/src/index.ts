// @keyless/doctor: does this identity have exactly the access Keyless needs, and if not, what is the fix?
export { runDoctor } from './access-doctor.js';
export type { DoctorReport, ProbeResource, ProbeResult, ProbeStatus } from './access-doctor.js';
export { DoctorError, doctorDefaults, isDoctorError, readDoctorOptions } from './doctor-options.js';
export type { DoctorErrorCode, DoctorOptions } from './doctor-options.js';
export { formatReport } from './report-format.js';
export { probeImage } from './probe-image.js';
