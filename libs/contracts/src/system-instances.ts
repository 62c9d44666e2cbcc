/**
 * The running service instances, as the launcher records them for the local Azure's portal (System page): a JSON file
 * named {@link systemInstancesFileName} in `$LOCAL_AZURE_HOME`, rewritten whenever an instance starts or stops and
 * removed when the system stops.
 */
export const systemInstancesFileName = 'instances.json';

/** One running service instance. */
export interface SystemInstance {
  /** Instance name (`gateway`, `gateway-2`, `recommendation`, …). */
  name: string;
  /** The service it runs (`gateway`, `recommendation`, `vision`). */
  service: string;
  /** Base URL of its HTTP listener; readiness is `${url}/health/ready`. */
  url: string;
}

/** The content of the instances file. */
export interface SystemInstancesFile {
  instances: SystemInstance[];
}
