# Hands the page the camera it asks for (the app holds the Android permission):
#
#   class CameraClient extends WebChromeClient {
#     public void onPermissionRequest(PermissionRequest request) {
#       request.grant(request.getResources());
#     }
#   }
.class public Lorg/tfsym3d/demo/CameraClient;
.super Landroid/webkit/WebChromeClient;

.method public constructor <init>()V
    .registers 1
    invoke-direct {p0}, Landroid/webkit/WebChromeClient;-><init>()V
    return-void
.end method

.method public onPermissionRequest(Landroid/webkit/PermissionRequest;)V
    .registers 3
    invoke-virtual {p1}, Landroid/webkit/PermissionRequest;->getResources()[Ljava/lang/String;
    move-result-object v0
    invoke-virtual {p1, v0}, Landroid/webkit/PermissionRequest;->grant([Ljava/lang/String;)V
    return-void
.end method
