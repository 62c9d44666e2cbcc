// @keyless/doctor: does this identity have exactly the access Keyless needs, and if not, what is the fix?
export { runDoctor } from './access-doctor.js';
export type { DoctorReport, ProbeResource, ProbeResult, ProbeStatus } from './access-doctor.js';
export { ArmAuthorizationReader, ArmReadError, authorizationApiVersion } from './arm-authorization.js';
export type { ArmAuthorizationReaderOptions, ArmReadFailure, ArmReadFailureKind } from './arm-authorization.js';
export { checkAccess } from './check-access.js';
export type { AccessFileEntry, CheckAccessInput, CheckAccessReport, CheckedDataAction, CheckedStatus, ReadHelp, ScopeAccess, UnreadResource } from './check-access.js';
export { azureResourceManagerEndpoint, DoctorError, doctorDefaults, doctorUsage, isDoctorError, readDoctorOptions, resourceIdVariables, wantsJson } from './doctor-options.js';
export type { AccessResource, DoctorErrorCode, DoctorOptions, DoctorOutput } from './doctor-options.js';
export { formatCheckAccess, formatReport } from './report-format.js';
export { probeImage } from './probe-image.js';
