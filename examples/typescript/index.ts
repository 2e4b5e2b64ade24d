// The platform from a TypeScript program (README: "Use it from TypeScript, Go or YAML").
//   pulumi package add ../../provider   # generates sdks/redis-keda-platform, adds it to package.json
//   npm install && pulumi up
// Every property is a stack config key of redis-keda-platform (same name, type, default);
// tests/infra/test_examples.py checks each one against the package schema.
import * as pulumi from "@pulumi/pulumi";
import * as rkp from "@pulumi/redis-keda-platform";

const platform = new rkp.Platform("platform", {
    target: rkp.Target.Aks,
    location: "westeurope",
    azureRedis: rkp.AzureRedis.Managed,
    redisManagedSku: "Balanced_B0",
    redisPublicNetworkAccess: rkp.RedisPublicNetworkAccess.Disabled,
    deployerPrincipalType: rkp.DeployerPrincipalType.ServicePrincipal,
    createAcr: true,
    workerMode: "deployment",
    workerMaxReplicas: 20,
    listLength: 5,
    workSecondsMax: 10,
    cacheApiReadPath: rkp.CacheApiReadPath.Central,
    monitoring: true,
});

export const cacheApiService = platform.cacheApiService;
export const redisHost = platform.redisHost;
export const redisPort = platform.redisPort;
export const kubeconfig = pulumi.secret(platform.kubeconfig);
